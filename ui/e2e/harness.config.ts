// Builds e2e/harness.ts (the mocked shell) into e2e/.harness/harness.js.
import { defineConfig } from "vite";

export default defineConfig({
  build: {
    outDir: "e2e/.harness", emptyOutDir: true, target: "es2022", minify: false,
    lib: { entry: "e2e/harness.ts", formats: ["es"], fileName: () => "harness.js" },
  },
});
