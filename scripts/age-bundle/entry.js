// What the console uses of age-encryption: sealing a bid to a call's key, and
// making a call's opening key in the buyer's browser.
export { Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
