import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

/** Where the api's certificate (chain, PEM) and private key (PEM) are: TLS_CERT_FILE and TLS_KEY_FILE. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** A certificate and its key, read and checked to belong together. */
export interface TlsCredentials {
  cert: Buffer;
  key: Buffer;
}

/**
 * TLS_CERT_FILE and TLS_KEY_FILE: both set serve HTTPS, neither plain HTTP
 * (the default, on 127.0.0.1 — behind a TLS proxy, or local only); one
 * without the other is refused, naming the one missing.
 */
export function tlsFilesFromEnv(env: NodeJS.ProcessEnv): TlsFiles | null {
  const certFile = env.TLS_CERT_FILE || undefined;
  const keyFile = env.TLS_KEY_FILE || undefined;
  if (!certFile && !keyFile) return null;
  if (!certFile || !keyFile) {
    throw new Error(`${certFile ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'} is not set but ${certFile ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'} is: set both to serve HTTPS, or neither for plain HTTP`);
  }
  return { certFile, keyFile };
}

/**
 * Reads the certificate and key and checks them with Node's own TLS (a
 * secure context is made of them: a key that is not the certificate's, or a
 * file that is not PEM, is refused here, not at the first client's
 * handshake). Errors name the variable and the file, never their content.
 */
export function loadTlsCredentials(files: TlsFiles): TlsCredentials {
  const read = (file: string, variable: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`${variable} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const credentials = { cert: read(files.certFile, 'TLS_CERT_FILE'), key: read(files.keyFile, 'TLS_KEY_FILE') };
  try {
    createSecureContext(credentials);
  } catch (err) {
    const reason = (err as Error).message;
    throw new Error(`TLS_CERT_FILE ${files.certFile} and TLS_KEY_FILE ${files.keyFile} cannot serve HTTPS: ${/key values mismatch/i.test(reason) ? 'the key is not the certificate\'s' : reason}`);
  }
  return credentials;
}
