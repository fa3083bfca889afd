import { defineConfig } from "vitest/config"

// Node 20 lacks Map.groupBy, which vitest 5's reporter uses to print failures.
if (typeof Map.groupBy !== "function") {
  Object.defineProperty(Map, "groupBy", {
    configurable: true,
    writable: true,
    value: <K, V>(items: Iterable<V>, key: (item: V, index: number) => K): Map<K, Array<V>> => {
      const groups = new Map<K, Array<V>>()
      let index = 0
      for (const item of items) {
        const k = key(item, index++)
        const group = groups.get(k)
        if (group === undefined) groups.set(k, [item])
        else group.push(item)
      }
      return groups
    }
  })
}

export default defineConfig({
  resolve: {
    alias: {
      "effect-session-backend": new URL("./src/index.ts", import.meta.url).pathname
    }
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000
  }
})
