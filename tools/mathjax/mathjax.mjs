// MathJax 3 (the TeX engine GitHub renders Markdown math with), in node.
//   node mathjax.mjs check  < fragments.json   -> [{index, error}] for each fragment that does not parse
//   node mathjax.mjs render < fragments.json   -> [svg] one SVG string per fragment
// fragments.json: [{"tex": "...", "display": true|false}, ...]
// Only the base and AMS packages are loaded, and a parse error throws: an undefined macro or an
// unbalanced brace is an error, never red text in the page.
import { mathjax } from 'mathjax-full/js/mathjax.js';
import { TeX } from 'mathjax-full/js/input/tex.js';
import { SVG } from 'mathjax-full/js/output/svg.js';
import { liteAdaptor } from 'mathjax-full/js/adaptors/liteAdaptor.js';
import { RegisterHTMLHandler } from 'mathjax-full/js/handlers/html.js';
import 'mathjax-full/js/input/tex/base/BaseConfiguration.js';
import 'mathjax-full/js/input/tex/ams/AmsConfiguration.js';

const mode = process.argv[2];
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const fragments = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const adaptor = liteAdaptor();
RegisterHTMLHandler(adaptor);
const tex = new TeX({
  packages: ['base', 'ams'],
  formatError: (jax, err) => { throw err; },
});
const doc = mathjax.document('', { InputJax: tex, OutputJax: new SVG({ fontCache: 'none' }) });

const out = [];
fragments.forEach((f, index) => {
  try {
    const node = doc.convert(f.tex, { display: f.display });
    if (mode === 'render') out.push(adaptor.outerHTML(node));
  } catch (e) {
    if (mode === 'render') out.push(`<code style="color:red">${String(e.message)}</code>`);
    else out.push({ index, error: String(e.message || e) });
  }
});
process.stdout.write(JSON.stringify(out));
