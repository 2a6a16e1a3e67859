-- The :Strata* commands, whichever way the server is started (vim.lsp.enable("strata") on
-- Neovim 0.11+, require("strata").setup() before).
if vim.g.loaded_strata or vim.fn.has("nvim-0.7") ~= 1 then
  return
end
vim.g.loaded_strata = true

require("strata").create_commands()
