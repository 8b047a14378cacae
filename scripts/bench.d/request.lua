-- The request wrk repeats, from the environment scripts/bench sets:
-- BENCH_METHOD (GET or POST), BENCH_TOKEN (bearer token, optional),
-- BENCH_BODY (a JSON body, optional).
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
end
