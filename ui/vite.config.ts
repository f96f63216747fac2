// Builds the tray app's web front end into ui/dist (the Tauri shell's frontendDist).
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", modulePreload: { polyfill: false } },
  test: { environment: "node", include: ["test/**/*.test.ts"] },
} as any);
