-- The S3 request wrk repeats against a presigned URL, from the environment
-- scripts/bench-s3 sets: BENCH_METHOD (GET or PUT) and BENCH_BODY_BYTES (the
-- size of the body a PUT sends; its bytes are generated once here).
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "0")
if size > 0 then
    wrk.body = string.rep("n", size)
end
