import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Errors Node's HTTP parser meets before Express sees a request — bytes that
 * are not HTTP (a body longer than its Content-Length runs into the next
 * "request"), headers too large, a request not received within its bound —
 * answered in the api's JSON error shape like every other error, and the
 * connection closed. Node's own answer is a bare status line.
 */
export function answerClientErrorsAsJson(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // Nothing to answer on a connection that is gone, or one whose answer has begun.
    const started = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || started) {
      socket.destroy();
      return;
    }
    const [status, error, message] = describe(err.code);
    const body = JSON.stringify({ error, message });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

function describe(code: string | undefined): [number, string, string] {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'request_timeout', 'the request did not arrive whole within the bound (CHANGO_API_REQUEST_TIMEOUT_MS / CHANGO_API_HEADERS_TIMEOUT_MS)'];
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'headers_too_large', 'the request headers are larger than the server accepts'];
    default:
      return [400, 'bad_http', `the request is not valid HTTP (${code ?? 'unparsable'}); a body longer than its Content-Length does that`];
  }
}
