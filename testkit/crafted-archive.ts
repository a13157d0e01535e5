import { gzipSync } from 'node:zlib';
import { pack as tarPack, type Header } from 'tar-stream';

export interface CraftEntry {
  header: Partial<Header> & { name: string };
  content?: Buffer;
}

/** A .tar.gz made with tar-stream's pack and zlib: any header at all, as an attacker would write it. */
export async function craft(entries: CraftEntry[]): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => void chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const { header, content } of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (content) pack.entry(header, content, done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await ended;
  return gzipSync(Buffer.concat(chunks));
}
