// Text that compresses like real tenant text: a few thousand pseudo-words drawn with a
// Zipf-like law (common words very common, a long tail of rare ones), plus the JSON and
// Markdown structure chat transcripts and notes have. zstd -3 packs it about 3-4x, not the
// 20x a tiny vocabulary would give.

import { randomInt, pick, type ByteStream, type Random } from './random.js';

const COMMON = (
  'the of and to a in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her all she there would their we him been has when who will more no if out so said what up its about ' +
  'into than them can only other new some could time these two may then do first any my now such like our over ' +
  'agent memory tool call user assistant deploy gateway tenant session channel invoice report schedule summary'
).split(' ');

const SYLLABLES = 'ka ri to na me lo su vi de pa ro ne ti mu sa ko le ba fi gu zo ce ha ju qu wy xe ly mo ta'.split(' ');

export class TextSource {
  private readonly vocabulary: string[];
  private readonly logSize: number;

  constructor(private readonly random: Random, vocabularySize = 6000) {
    const words = new Set<string>(COMMON);
    while (words.size < vocabularySize) {
      const syllables = randomInt(random, 1, 4);
      let word = '';
      for (let i = 0; i < syllables; i++) word += pick(random, SYLLABLES);
      if (random() < 0.3) word += pick(random, ['s', 'ed', 'ing', 'er', 'ly', 'tion']);
      words.add(word);
    }
    // COMMON first: they get the highest Zipf ranks.
    this.vocabulary = [...words];
    this.logSize = Math.log(this.vocabulary.length);
  }

  word(): string {
    // exp(u·ln N) - 1 is distributed ~ 1/(rank+1): Zipf with s = 1.
    const rank = Math.floor(Math.exp(this.random() * this.logSize)) - 1;
    return this.vocabulary[rank]!;
  }

  sentence(minWords = 5, maxWords = 22): string {
    const count = randomInt(this.random, minWords, maxWords);
    const words = new Array<string>(count);
    for (let i = 0; i < count; i++) words[i] = this.word();
    const first = words[0]!;
    words[0] = first.charAt(0).toUpperCase() + first.slice(1);
    const r = this.random();
    return words.join(' ') + (r < 0.8 ? '.' : r < 0.9 ? '?' : '!');
  }

  paragraph(minSentences = 2, maxSentences = 7): string {
    const count = randomInt(this.random, minSentences, maxSentences);
    const out = new Array<string>(count);
    for (let i = 0; i < count; i++) out[i] = this.sentence();
    return out.join(' ');
  }

  identifier(prefix: string, length = 16): string {
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    let id = prefix;
    for (let i = 0; i < length; i++) id += alphabet[Math.floor(this.random() * alphabet.length)];
    return id;
  }

  code(lines: number): string {
    const out: string[] = [];
    let indent = 0;
    for (let i = 0; i < lines; i++) {
      const r = this.random();
      const pad = '  '.repeat(indent);
      if (r < 0.15) {
        out.push(`${pad}function ${this.word()}_${this.word()}(${this.word()}, ${this.word()}) {`);
        indent = Math.min(indent + 1, 4);
      } else if (r < 0.3 && indent > 0) {
        indent--;
        out.push(`${'  '.repeat(indent)}}`);
      } else if (r < 0.6) {
        out.push(`${pad}const ${this.word()} = await ${this.word()}.${this.word()}(${randomInt(this.random, 0, 999)});`);
      } else {
        out.push(`${pad}// ${this.sentence(3, 9)}`);
      }
    }
    return out.join('\n');
  }
}

const MODELS = ['claude-sonnet-4-5', 'claude-opus-4-1', 'claude-haiku-4-5'];
const TOOLS = ['web_search', 'read_file', 'write_file', 'run_command', 'calendar_lookup', 'send_message', 'memory_search'];

/** One chat-session JSONL transcript of about `target` bytes (whole lines; may overshoot by one line). */
export function chatSession(text: TextSource, random: Random, bytes: ByteStream, target: number, startTs: number): string {
  const lines: string[] = [];
  let size = 0;
  let ts = startTs;
  const sessionId = text.identifier('sess_', 20);
  const model = pick(random, MODELS);
  lines.push(JSON.stringify({ type: 'session', id: sessionId, version: 3, model, cwd: '/workspace', startedAt: new Date(ts).toISOString() }));
  size += lines[0]!.length + 1;
  let turn = 0;
  while (size < target) {
    ts += randomInt(random, 500, 90_000);
    const id = text.identifier('msg_', 24);
    let line: string;
    const r = random();
    if (turn % 2 === 0) {
      line = JSON.stringify({ type: 'message', id, parentId: null, ts, role: 'user', content: [{ type: 'text', text: text.paragraph(1, 4) }] });
    } else if (r < 0.25) {
      const tool = pick(random, TOOLS);
      line = JSON.stringify({
        type: 'message', id, ts, role: 'assistant', model,
        content: [
          { type: 'text', text: text.sentence() },
          { type: 'tool_use', id: text.identifier('toolu_', 24), name: tool, input: { query: text.sentence(3, 8), limit: randomInt(random, 1, 50) } },
        ],
        usage: { input_tokens: randomInt(random, 200, 90_000), output_tokens: randomInt(random, 10, 4000), cache_read_input_tokens: randomInt(random, 0, 80_000) },
      });
    } else if (r < 0.4) {
      // Tool results: search hits, command output, now and then an attachment as base64.
      const content =
        random() < 0.08
          ? { type: 'image', source: { type: 'base64', media_type: 'image/png', data: bytes.bytes(randomInt(random, 2_000, 24_000)).toString('base64') } }
          : random() < 0.5
            ? { type: 'text', text: JSON.stringify(Array.from({ length: randomInt(random, 2, 8) }, () => ({ title: text.sentence(3, 8), url: `https://${text.word()}.example/${text.word()}/${randomInt(random, 1, 99999)}`, snippet: text.sentence(10, 30) }))) }
            : { type: 'text', text: `$ ${text.word()} --${text.word()}\n${text.code(randomInt(random, 3, 30))}` };
      line = JSON.stringify({ type: 'tool_result', id, ts, toolUseId: text.identifier('toolu_', 24), isError: random() < 0.03, content: [content] });
    } else {
      line = JSON.stringify({
        type: 'message', id, ts, role: 'assistant', model,
        content: [{ type: 'text', text: random() < 0.2 ? `${text.paragraph()}\n\n\`\`\`ts\n${text.code(randomInt(random, 4, 25))}\n\`\`\`\n${text.sentence()}` : text.paragraph(1, 8) }],
        usage: { input_tokens: randomInt(random, 200, 90_000), output_tokens: randomInt(random, 10, 4000) },
        stopReason: 'end_turn',
      });
    }
    lines.push(line);
    size += line.length + 1;
    turn++;
  }
  return `${lines.join('\n')}\n`;
}

/** A Markdown note of about `target` bytes. */
export function markdownNote(text: TextSource, random: Random, target: number): string {
  const parts: string[] = [`# ${text.sentence(2, 6).slice(0, -1)}\n`, `_updated ${new Date(1_760_000_000_000 + randomInt(random, 0, 1e10)).toISOString().slice(0, 10)}_\n`];
  let size = parts[0]!.length + parts[1]!.length;
  while (size < target) {
    const r = random();
    let part: string;
    if (r < 0.15) part = `## ${text.sentence(2, 7).slice(0, -1)}\n`;
    else if (r < 0.35) part = Array.from({ length: randomInt(random, 2, 7) }, () => `- ${text.sentence(3, 14)}`).join('\n') + '\n';
    else if (r < 0.42) part = `\`\`\`js\n${text.code(randomInt(random, 3, 20))}\n\`\`\`\n`;
    else if (r < 0.47) {
      const cols = randomInt(random, 2, 5);
      const row = () => `| ${Array.from({ length: cols }, () => text.word()).join(' | ')} |`;
      part = `${row()}\n|${' --- |'.repeat(cols)}\n${Array.from({ length: randomInt(random, 2, 8) }, row).join('\n')}\n`;
    } else part = `${text.paragraph()}\n`;
    parts.push(part);
    size += part.length + 1;
  }
  return parts.join('\n');
}
