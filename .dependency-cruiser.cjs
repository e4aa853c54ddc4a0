// dependency-cruiser, run by `npm run check:deps` (and CI after the linter): no runtime import cycle
// among src/ files, and src/ never imports test/ or bench/.
//
// Parser: swc. dependency-cruiser reads TypeScript through the `typescript` package's API, which it
// supports below version 7 only; with this project's typescript@7 it would skip every .ts file and
// pass with "0 modules cruised". swc parses the sources as written (`.ts` specifiers resolve as
// plain files) and marks `import type { X }`, `export type { X } from` and `import { type X }` where
// every name is a type as `type-only`. With the swc parser `tsPreCompilationDeps` does not apply (it
// picks between the TypeScript compiler's view before and after compilation), so it is left unset:
// setting it only makes dependency-cruiser warn that it found no usable TypeScript compiler.
//
// Type-only imports are erased before the code runs, so a cycle that needs one is not a runtime
// cycle. Two limits of dependency-cruiser to know about:
// - It finds one cycle per import, across all imports, and the rule then looks at that cycle's
//   imports (`viaOnly`). A runtime cycle each of whose imports happens to be found through some
//   other, type-only, path first goes unreported. Rare, but a clean run is not a proof.
// - `import { type X } from './x.ts'` (braces, every name a type) counts as type-only here, but
//   Node's type stripping (and tsc with verbatimModuleSyntax) keeps it as `import {} from './x.ts'`,
//   which still loads x.ts first. Write type-only imports as `import type { X }`.

// Without a loadable @swc/core dependency-cruiser would read no .ts file and report "no dependency
// violations found (0 modules)". Stop here instead.
try {
  require('@swc/core');
} catch (err) {
  throw new Error(`check:deps needs @swc/core (npm install): ${err.message}`);
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'A runtime import cycle among src/ files: one of them is used before it has finished ' +
        'loading. Break it (move what both need into a third module), or make the imports that ' +
        'close it `import type` if they only bring types.',
      from: { path: '^src/' },
      to: {
        path: '^src/',
        circular: true,
        // This import is not type-only, and neither is any other import in the cycle found.
        dependencyTypesNot: ['type-only'],
        viaOnly: { dependencyTypesNot: ['type-only'] },
      },
    },
    {
      name: 'no-src-to-test-or-bench',
      severity: 'error',
      comment: 'src/ is what ships (dist/ is built from it); test/ and bench/ are not in the package.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'An import in src/ that resolves to no file or package: a typo, a moved file, or a package ' +
        'missing from package.json. (It would also hide any cycle through it.)',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    parser: 'swc',
    tsConfig: { fileName: 'tsconfig.json' },
    // Packages are checked for resolving, not read.
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
