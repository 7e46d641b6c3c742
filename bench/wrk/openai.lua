-- wrk script: POST /v1/chat/completions straight to the OpenAI-compatible stub (bench/Stub), the
-- request LuluClaw's OpenAI provider sends for one turn of a fresh session (system prompt + message).
--   wrk ... -s bench/wrk/openai.lua http://127.0.0.1:PORT/v1/chat/completions
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
wrk.body = '{"messages":[{"role":"system","content":"You are a helpful assistant."},' ..
  '{"role":"user","content":"Hello! What can you help me with?"}],"model":"gpt-4o-mini"}'
