-- Strata language server configuration for Neovim 0.11+:
--
--   vim.lsp.enable("strata")
--
-- Override any field with vim.lsp.config("strata", { ... }) before enabling it.

-- The status and progress handlers behind require("strata").status(), from lua/strata (on the
-- runtimepath with this directory).
local ok, strata = pcall(require, "strata")
-- The buffer setup (whole model suggestions, inline completion on 0.12+) comes from an
-- LspAttach autocmd, not from on_attach: that field is yours, and setting it keeps the setup.
if ok then
  strata.create_autocmds()
end

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
}
