// Bundles src/editor.js (CodeMirror 6) into ../static/js/build/editor.js: one minified IIFE, no source map, the
// same bytes for the same lockfile (make static-build runs `npm ci` and then this).
import { build } from "esbuild";

const result = await build({
  entryPoints: ["src/editor.js"],
  outfile: "../static/js/build/editor.js",
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "eof",
  logLevel: "warning",
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
console.log(`static/js/build/editor.js: ${(bytes / 1024).toFixed(1)} KiB`);
