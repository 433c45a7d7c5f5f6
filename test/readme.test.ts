/** Every ```ts block in README.md type-checks against src/ (`from 'baton'` is src/index.ts, through tsconfig.json's paths). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { ROOT } from './support/server.ts';

function snippets(markdown: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const re = /^```ts\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) out.push({ line: markdown.slice(0, m.index).split('\n').length + 1, code: m[1]! });
  return out;
}

describe('README', function () {
  this.timeout(120_000);

  it('every TypeScript snippet compiles', () => {
    const blocks = snippets(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    assert.ok(blocks.length >= 2, 'the README has TypeScript snippets');
    const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')) })!;
    // Each snippet is a module of its own, beside README.md, so `baton` and node_modules resolve as in an app here.
    const files = new Map(blocks.map((b, i) => [path.join(ROOT, `README.snippet-${i + 1}.ts`), b]));
    const host = ts.createCompilerHost(config.options);
    const readFile = host.readFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    const getSourceFile = host.getSourceFile.bind(host);
    host.readFile = (f) => files.get(f)?.code ?? readFile(f);
    host.fileExists = (f) => files.has(f) || fileExists(f);
    host.getSourceFile = (f, v, onError, create) => {
      const block = files.get(f);
      return block ? ts.createSourceFile(f, block.code, v) : getSourceFile(f, v, onError, create);
    };
    const program = ts.createProgram([...files.keys()], { ...config.options, noEmit: true, noUnusedLocals: false }, host);
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const block = d.file ? files.get(d.file.fileName) : undefined;
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
      const at = block && where ? `README.md:${block.line + where.line}` : (d.file?.fileName ?? '');
      return `${at}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    assert.deepEqual(problems, [], problems.join('\n'));
  });
});
