#!/usr/bin/env python3
"""Writes crates/domain/tests/vat_numbers.json: for each EU member state,
VAT numbers that python-stdnum accepts (random ones of the state's format)
and numbers it refuses (random ones, and the valid ones with one character
changed). The domain's own check digits are tested against them.

    pip install python-stdnum==2.2 && scripts/vat-vectors.py
"""
import json
import random
from pathlib import Path

from stdnum.eu import vat

random.seed(7)
D = '0123456789'
L = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
IE = 'ABCDEFGHIJKLMNOPQRSTUVW'


def r(chars, n):
    return ''.join(random.choice(chars) for _ in range(n))


# Candidate numbers of each state's format (after the prefix).
PATTERNS = {
    'AT': lambda: 'U' + r(D, 8),
    'BE': lambda: random.choice('01') + r(D, 9),
    'BG': lambda: r(D, random.choice([9, 10])),
    'CY': lambda: random.choice('013459') + r(D, 7) + r(L, 1),
    'CZ': lambda: r(D, random.choice([8, 8, 9, 10])),
    'DE': lambda: r('123456789', 1) + r(D, 8),
    'DK': lambda: r('123456789', 1) + r(D, 7),
    'EE': lambda: '10' + r(D, 7),
    'EL': lambda: r(D, 9),
    'ES': lambda: random.choice([r(L, 1) + r(D, 7) + r(L, 1), r(D, 8) + r(L, 1),
                                 r('ABCDEFGHJUV', 1) + r(D, 8), 'X' + r(D, 7) + r(L, 1)]),
    'FI': lambda: r(D, 8),
    'FR': lambda: r(D, 11),
    'HR': lambda: r(D, 11),
    'HU': lambda: r('123456789', 1) + r(D, 7),
    'IE': lambda: random.choice([r(D, 7) + r(IE, 1), r(D, 7) + r(IE, 1) + random.choice('AH'),
                                 r(D, 1) + r(L + '+*', 1) + r(D, 5) + r(IE, 1)]),
    'IT': lambda: r(D, 7) + random.choice(['001', '010', '050', '100', '120', '888']) + r(D, 1),
    'LT': lambda: random.choice([r(D, 8) + '1', r(D, 10) + '1' + r(D, 1)]),
    'LU': lambda: r('123456789', 1) + r(D, 7),
    'LV': lambda: random.choice('456789') + r(D, 10),
    'MT': lambda: r('123456789', 1) + r(D, 7),
    'NL': lambda: r(D, 9) + 'B' + r(D, 2),
    'PL': lambda: r(D, 10),
    'PT': lambda: r('1235689', 1) + r(D, 8),
    'RO': lambda: r('123456789', 1) + r(D, random.randint(1, 9)),
    'SE': lambda: r(D, 10) + '01',
    'SI': lambda: r('123456789', 1) + r(D, 7),
    'SK': lambda: r('123456789', 1) + r(D, 1) + random.choice('234789') + r(D, 7),
}

out = {}
for country, pattern in PATTERNS.items():
    valid, invalid = [], []
    while len(valid) < 40:
        n = pattern()
        if vat.is_valid(country + n):
            if n not in valid:
                valid.append(n)
        elif len(invalid) < 40:
            invalid.append(n)
    for n in valid:
        for _ in range(20):
            i = random.randrange(len(n))
            m = n[:i] + random.choice(D if n[i] in D else L) + n[i + 1:]
            if m != n and not vat.is_valid(country + m):
                invalid.append(m)
                break
    out[country] = {'valid': valid, 'invalid': invalid}

path = Path(__file__).resolve().parent.parent / 'crates/domain/tests/vat_numbers.json'
path.write_text(json.dumps(out, indent=0, sort_keys=True) + '\n')
print(f'wrote {path}')
