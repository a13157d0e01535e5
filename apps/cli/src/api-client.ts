import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * Exit statuses of the commands that drive the api (`chango-backup backup …`),
 * for scripts: what went wrong decides what to do next.
 */
export const EXIT = {
  ok: 0,
  /** The backup, drill or copy ran and failed (its words are printed), or a job is unknown. */
  failed: 1,
  /** The command line or the settings are wrong: nothing was asked of the api. */
  usage: 2,
  /** The api could not be reached, or refused the request (token, role, throttled, not ready). */
  api: 3,
} as const;

/** An error with the exit status it ends the command with; its message is the whole story. */
export class ExitError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Where the api is and how to speak to it: CHANGO_API_URL, CHANGO_API_TOKEN_FILE (a token is never a flag), CHANGO_API_CA_FILE. */
export interface ApiAccess {
  url: URL;
  token: string;
  /** PEM of the CA that signed the api's certificate, for an api served with a certificate of its own (HTTPS). */
  ca?: Buffer;
  /** Bound of one request, answer included (CHANGO_API_TIMEOUT_MS). */
  timeoutMs: number;
}

/** The api's address and token from the environment; errors name the variable (exit status 2). */
export function apiAccessFromEnv(env: NodeJS.ProcessEnv = process.env): ApiAccess {
  const raw = env.CHANGO_API_URL || 'http://127.0.0.1:8080';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ExitError(EXIT.usage, `CHANGO_API_URL ${JSON.stringify(raw.slice(0, 200))} is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ExitError(EXIT.usage, `CHANGO_API_URL must be http:// or https://, got ${url.protocol}`);
  const tokenFile = env.CHANGO_API_TOKEN_FILE;
  if (!tokenFile) throw new ExitError(EXIT.usage, 'CHANGO_API_TOKEN_FILE is not set: name the file that holds your api token (made with `chango-backup token new`); a token is never a flag');
  const token = readSmallFile(tokenFile, 'CHANGO_API_TOKEN_FILE').toString('utf8').trim();
  if (!/^\S+$/.test(token)) throw new ExitError(EXIT.usage, `CHANGO_API_TOKEN_FILE ${tokenFile} does not hold one token (one line, no spaces)`);
  const timeout = Number(env.CHANGO_API_TIMEOUT_MS || 30_000);
  if (!Number.isInteger(timeout) || timeout < 100) throw new ExitError(EXIT.usage, 'CHANGO_API_TIMEOUT_MS must be a whole number of milliseconds, at least 100');
  return { url, token, timeoutMs: timeout, ...(env.CHANGO_API_CA_FILE ? { ca: readSmallFile(env.CHANGO_API_CA_FILE, 'CHANGO_API_CA_FILE') } : {}) };
}

function readSmallFile(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ExitError(EXIT.usage, `${variable} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** An answer of the api: its status and its JSON body. */
export interface ApiAnswer<T> {
  status: number;
  body: T;
}

/**
 * The api over HTTP(S), one bounded request at a time (connect and answer
 * within `timeoutMs`). An unreachable api or one that refuses the request
 * (401, 403, 429, 503) ends the command with EXIT.api and the api's own words;
 * other answers are the caller's to read.
 */
export class ApiClient {
  constructor(private readonly access: ApiAccess) {}

  get origin(): string {
    return this.access.url.origin;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
    const url = new URL(path, this.access.url);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const answer = await this.send(method, url, payload);
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.text);
    } catch {
      throw new ExitError(EXIT.api, `${method} ${url.pathname} at ${this.origin} answered ${answer.status} with something that is not JSON: is CHANGO_API_URL the chango-backup api?`);
    }
    if ([401, 403, 429, 503].includes(answer.status)) {
      const { error, message } = parsed as { error?: string; message?: string };
      throw new ExitError(EXIT.api, `the api at ${this.origin} refused ${method} ${url.pathname}: ${answer.status} ${error ?? ''}: ${message ?? ''}`.replace(/ : /, ': '));
    }
    return { status: answer.status, body: parsed as T };
  }

  private send(method: string, url: URL, payload: Buffer | undefined): Promise<{ status: number; text: string }> {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { authorization: `Bearer ${this.access.token}`, accept: 'application/json' };
      if (payload) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(payload.length);
      }
      const req = request(url, { method, headers, agent: false, ...(this.access.ca ? { ca: this.access.ca } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => reject(unreachable(this.origin, err)));
      });
      // One bound for the whole exchange: connect, send, answer.
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.access.timeoutMs} ms (CHANGO_API_TIMEOUT_MS)`)), this.access.timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', (err) => reject(unreachable(this.origin, err)));
      req.end(payload);
    });
  }
}

function unreachable(origin: string, err: Error): ExitError {
  const code = (err as NodeJS.ErrnoException).code;
  return new ExitError(EXIT.api, `the api at ${origin} cannot be reached (${code ? `${code}: ` : ''}${err.message}): is chango-api running, and is CHANGO_API_URL right?`);
}
