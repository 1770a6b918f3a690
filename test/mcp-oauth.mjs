// MCP authorization with the official MCP TypeScript SDK, the client code
// Claude Code builds on: connecting to /mcp without a token fails with the
// SDK's UnauthorizedError after it has followed the 401's
// resource_metadata to the protected resource metadata, discovered the
// authorization server and built the authorization URL (PKCE, resource
// indicator). The script then visits that URL as a browser would (the
// test authorization server approves at once), hands the code to
// finishAuth, reconnects with the token and calls a tool.
//
// Usage: node mcp-oauth.mjs MCP_URL CLIENT_ID CLIENT_SECRET
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [mcpURL, clientID, clientSecret] = process.argv.slice(2);
if (!mcpURL || !clientID || !clientSecret) {
  console.error("usage: node mcp-oauth.mjs MCP_URL CLIENT_ID CLIENT_SECRET");
  process.exit(2);
}

function fail(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}

// A pre-registered confidential client that keeps everything in memory.
class Provider {
  constructor() {
    this.authURL = undefined;
    this.saved = undefined;
    this.verifier = undefined;
  }
  get redirectUrl() {
    return "http://127.0.0.1:1/callback";
  }
  get clientMetadata() {
    return { client_name: "node-oauth-test", redirect_uris: [this.redirectUrl], grant_types: ["authorization_code"], response_types: ["code"] };
  }
  clientInformation() {
    return { client_id: clientID, client_secret: clientSecret };
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url) {
    this.authURL = url;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

const provider = new Provider();
const first = new Client({ name: "node-oauth", version: "1.0.0" });
try {
  await first.connect(new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider }));
  fail("connected without a token");
} catch (err) {
  if (!(err instanceof UnauthorizedError)) fail("connect without a token: " + err);
}
if (!provider.authURL) fail("the SDK did not reach the authorization step");
const params = provider.authURL.searchParams;
if (params.get("resource") !== mcpURL) fail(`authorization URL resource = ${params.get("resource")}, want ${mcpURL}`);
if (!(params.get("scope") || "").split(" ").includes("mailroom:mcp")) fail(`authorization URL scope = ${params.get("scope")}, want mailroom:mcp`);
if (params.get("code_challenge_method") !== "S256") fail("no PKCE S256 challenge");

const res = await fetch(provider.authURL, { redirect: "manual" });
const location = res.headers.get("location");
if (res.status !== 302 || !location) fail(`authorization endpoint answered ${res.status}`);
const code = new URL(location).searchParams.get("code");

const transport = new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider });
await transport.finishAuth(code);
const token = provider.tokens()?.access_token;
if (!token) fail("no access token after finishAuth");
const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
if (![].concat(claims.aud).includes(mcpURL)) fail(`token audience ${JSON.stringify(claims.aud)}, want ${mcpURL}`);

const client = new Client({ name: "node-oauth", version: "1.0.0" });
await client.connect(transport);
const result = await client.callTool({ name: "list_sources", arguments: {} });
if (result.isError) fail("list_sources: " + JSON.stringify(result));
await client.close();
console.log(`ok: authorized as ${claims.sub} for ${claims.aud}, list_sources answered`);
