import { timingSafeEqual } from 'node:crypto';

/** A set of accepted bearer tokens, compared in constant time. */
export class BearerTokens {
  private readonly tokens: Buffer[];

  constructor(tokens: string[]) {
    this.tokens = tokens.map((t) => Buffer.from(t));
  }

  /** Whether an Authorization header carries one of the tokens. */
  accepts(header: string | undefined): boolean {
    const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (!match) return false;
    const given = Buffer.from(match[1]);
    return this.tokens.some((t) => t.length === given.length && timingSafeEqual(t, given));
  }
}
