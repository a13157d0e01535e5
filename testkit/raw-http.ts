import net from 'node:net';

/** What came back on a raw connection: the bytes, whether and when the server closed it. */
export interface RawExchange {
  text: string;
  /** The status code of the first response, or undefined when none came. */
  status: number | undefined;
  closedByServer: boolean;
  /** Milliseconds from connect to the server's close (or to giving up). */
  ms: number;
}

/**
 * Speaks HTTP by hand where a client library would not lie: a Content-Length
 * that the body does not keep, headers a byte at a time, nothing at all.
 * `parts` are sent in order, `pauseMs` apart; the exchange ends when the
 * server closes the connection or `giveUpMs` after connecting.
 */
export function rawExchange(port: number, parts: (string | Buffer)[], options: { pauseMs?: number; giveUpMs: number }): Promise<RawExchange> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let closedByServer = false;
    let finished = false;
    let sender: NodeJS.Timeout | undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(giveUp);
      clearInterval(sender);
      socket.destroy();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
      resolve({ text, status: status ? Number(status) : undefined, closedByServer, ms: performance.now() - started });
    };
    const giveUp = setTimeout(finish, options.giveUpMs);
    socket.on('data', (chunk) => (text += chunk.toString('utf8')));
    socket.on('end', () => {
      closedByServer = true;
      finish();
    });
    socket.on('close', () => {
      closedByServer = true;
      finish();
    });
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      const queue = [...parts];
      const sendNext = () => {
        const part = queue.shift();
        if (part === undefined) return clearInterval(sender);
        if (!socket.destroyed) socket.write(part);
      };
      sendNext();
      if (queue.length > 0) sender = setInterval(sendNext, options.pauseMs ?? 0);
    });
  });
}

/** The JSON body of a raw response, or undefined. */
export function rawJson(exchange: RawExchange): Record<string, unknown> | undefined {
  const body = exchange.text.split('\r\n\r\n').slice(1).join('\r\n\r\n');
  try {
    return JSON.parse(body) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
