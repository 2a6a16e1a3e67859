-- Strata language server configuration for Neovim 0.11+:
--
--   vim.lsp.enable("strata")
--
-- Override any field with vim.lsp.config("strata", { ... }) before enabling it.

-- The status and progress handlers behind require("strata").status(), and the buffer setup that
-- completes model suggestions, from lua/strata (on the runtimepath with this directory).
local ok, strata = pcall(require, "strata")

---@type vim.lsp.Config
return {
  cmd = { "strata", "serve", "--stdio" },
  filetypes = { "rust", "typescript", "typescriptreact", "javascript", "javascriptreact" },
  root_markers = { ".git", "Cargo.toml", "package.json" },
  -- Empty tables would go out as JSON arrays; the server wants objects.
  init_options = vim.empty_dict(),
  settings = { strata = { config = vim.empty_dict() } },
  -- Strata's own field, not Neovim's: on 0.12+, turn on Neovim's inline completion (ghost
  -- text) in Strata's buffers when the server serves it. `false` leaves it to you.
  inline_completion = true,
  handlers = ok and strata.handlers() or nil,
  on_attach = ok and strata.on_attach or nil,
}
