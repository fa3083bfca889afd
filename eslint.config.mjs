import effectPlugin from "@effect/eslint-plugin"
import tsPlugin from "@typescript-eslint/eslint-plugin"
import tsParser from "@typescript-eslint/parser"

export default [
  { ignores: ["node_modules/**", "dist/**", ".bench/**", ".tmp/**"] },
  {
    files: ["**/*.ts", "**/*.mjs"],
    languageOptions: { parser: tsParser, ecmaVersion: 2022, sourceType: "module" },
    plugins: { "@effect": effectPlugin, "@typescript-eslint": tsPlugin },
    rules: {
      // the formatting of the Effect repositories
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }],
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-syntax": ["error", {
        selector: "CallExpression[callee.name='setTimeout'], CallExpression[callee.name='setInterval']",
        message: "Use Effect.sleep, Schedule or the Clock: timers must run on TestClock in tests."
      }]
    }
  }
]
