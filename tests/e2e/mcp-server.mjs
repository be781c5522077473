// A real MCP server (official TypeScript SDK, streamable HTTP) behind
// Drawbridge's gateway. Its tool proves it received the user's upstream
// token: it calls the identity provider's userinfo endpoint with it.
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const port = Number(process.env.MCP_SERVER_PORT);
const userinfo = process.env.USERINFO_URL;

http.createServer(async (req, res) => {
  const authorization = req.headers['authorization'] || '';
  const server = new McpServer({ name: 'drawbridge-e2e-server', version: '1.0.0' });
  server.tool('whoami', 'The email of the user whose upstream token reached this server', async () => {
    const r = await fetch(userinfo, { headers: { authorization } });
    const text = r.ok ? (await r.json()).email : `userinfo answered ${r.status}`;
    return { content: [{ type: 'text', text }] };
  });
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  let body = '';
  for await (const chunk of req) body += chunk;
  await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
}).listen(port, '127.0.0.1', () => console.log(`mcp server on ${port}`));
