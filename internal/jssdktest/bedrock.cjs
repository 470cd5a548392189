// Drives the JavaScript AWS SDK v3 (@aws-sdk/client-bedrock-runtime) with its
// default request handler against ENDPOINT: InvokeModel,
// InvokeModelWithResponseStream, Converse and ConverseStream, one after the
// other, then the two streams at once. Credentials come from the SDK's
// default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Prints one JSON
// object; on a failure, the error's name, code and message, and exits 1.
"use strict";
const {
  BedrockRuntimeClient, InvokeModelCommand, InvokeModelWithResponseStreamCommand,
  ConverseCommand, ConverseStreamCommand,
} = require("@aws-sdk/client-bedrock-runtime");

const endpoint = process.env.ENDPOINT;
const modelId = process.env.MODEL;
const client = new BedrockRuntimeClient({ region: process.env.AWS_REGION || "us-east-1", endpoint, maxAttempts: 1 });

const body = JSON.stringify({
  anthropic_version: "bedrock-2023-05-31", max_tokens: 200,
  messages: [{ role: "user", content: "Say hello." }],
});
const converse = { modelId, messages: [{ role: "user", content: [{ text: "Say hello." }] }], inferenceConfig: { maxTokens: 200 } };

async function invoke() {
  const out = await client.send(new InvokeModelCommand({ modelId, body, contentType: "application/json", accept: "application/json" }));
  const j = JSON.parse(Buffer.from(out.body).toString("utf8"));
  return { text: j.content.map((c) => c.text || "").join(""), output_tokens: j.usage.output_tokens };
}

async function invokeStream() {
  const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId, body, contentType: "application/json" }));
  let text = "", events = 0, stop = "";
  for await (const ev of out.body) {
    if (!ev.chunk) continue;
    events++;
    const j = JSON.parse(Buffer.from(ev.chunk.bytes).toString("utf8"));
    if (j.type === "content_block_delta" && j.delta.text) text += j.delta.text;
    if (j.type === "message_delta") stop = j.delta.stop_reason;
  }
  return { text, events, stop_reason: stop };
}

async function converseOnce() {
  const out = await client.send(new ConverseCommand(converse));
  return { text: out.output.message.content.map((c) => c.text || "").join(""), output_tokens: out.usage.outputTokens, stop_reason: out.stopReason };
}

async function converseStream() {
  const out = await client.send(new ConverseStreamCommand(converse));
  let text = "", events = 0, stop = "", outputTokens = 0;
  for await (const ev of out.stream) {
    events++;
    if (ev.contentBlockDelta && ev.contentBlockDelta.delta.text) text += ev.contentBlockDelta.delta.text;
    if (ev.messageStop) stop = ev.messageStop.stopReason;
    if (ev.metadata) outputTokens = ev.metadata.usage.outputTokens;
  }
  return { text, events, stop_reason: stop, output_tokens: outputTokens };
}

(async () => {
  try {
    const res = {};
    res.invoke = await invoke();
    res.invoke_stream = await invokeStream();
    res.converse = await converseOnce();
    res.converse_stream = await converseStream();
    const both = await Promise.all([invokeStream(), converseStream()]);
    res.concurrent = both.map((r) => r.events);
    process.stdout.write(JSON.stringify(res));
    client.destroy();
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: { name: e.name, code: e.code, message: e.message, status: e.$metadata && e.$metadata.httpStatusCode } }));
    client.destroy();
    process.exit(1);
  }
})();
