/**
 * Keeps secrets out of what the chaos suite prints and writes (table, report, saved logs):
 * every known secret value — the stack's root secret, the S3 secret key, the api tokens — is
 * replaced by a placeholder wherever it appears. The service is meant never to print them; this
 * is the harness not relying on that while it reports on a service that may be broken.
 */
export class Redactor {
  private readonly secrets = new Set<string>();

  add(...values: (string | undefined)[]): void {
    for (const value of values) if (value && value.length >= 8) this.secrets.add(value);
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('[redacted]');
    return out;
  }
}
