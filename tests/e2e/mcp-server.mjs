// A real MCP server (official TypeScript SDK, streamable HTTP) behind
// Drawbridge's gateway. Its tools prove it received the user's upstream
// token: they call the identity provider's userinfo endpoint with it
// (`display_name` answers the `name` claim, which the provider only gives
// for a token granted the `profile` scope).
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const port = Number(process.env.MCP_SERVER_PORT);
const userinfo = process.env.USERINFO_URL;

http.createServer(async (req, res) => {
  const authorization = req.headers['authorization'] || '';
  const server = new McpServer({ name: 'drawbridge-e2e-server', version: '1.0.0' });
  const claim = (name) => async () => {
    const r = await fetch(userinfo, { headers: { authorization } });
    const text = r.ok ? String((await r.json())[name]) : `userinfo answered ${r.status}`;
    return { content: [{ type: 'text', text }] };
  };
  server.tool('whoami', 'The email of the user whose upstream token reached this server', claim('email'));
  server.tool('display_name', 'The name of the user (needs the profile scope)', claim('name'));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  let body = '';
  for await (const chunk of req) body += chunk;
  await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
}).listen(port, '127.0.0.1', () => console.log(`mcp server on ${port}`));
