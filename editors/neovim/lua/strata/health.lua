-- :checkhealth strata

local M = {}

-- vim.health.start/ok/... since 0.10; require("health").report_* before.
local function reporter()
  local h = vim.health
  if h and h.start then
    return h
  end
  h = h or require("health")
  return {
    start = h.report_start,
    ok = h.report_ok,
    info = h.report_info,
    warn = h.report_warn,
    error = h.report_error,
  }
end

-- The command Strata is started with: the running client's, else setup()'s, else the default.
local function configured_cmd()
  local strata = require("strata")
  local client = strata.get_clients(nil)[1]
  if client and client.config and type(client.config.cmd) == "table" then
    return client.config.cmd, client.config.cmd_env
  end
  if vim.lsp.config and vim.fn.has("nvim-0.11") == 1 then
    local ok, config = pcall(function()
      return vim.lsp.config.strata
    end)
    if ok and type(config) == "table" and type(config.cmd) == "table" then
      return config.cmd, config.cmd_env
    end
  end
  local options = strata.options()
  if type(options.cmd) == "table" then
    return options.cmd, options.cmd_env
  end
  return strata.defaults.cmd, nil
end

local function version_output(bin)
  local output = vim.fn.system({ bin, "--version" })
  return vim.v.shell_error, vim.trim(output or "")
end

function M.check()
  local report = reporter()

  report.start("Neovim")
  local v = vim.version()
  local version = string.format("%d.%d.%d", v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.7") ~= 1 then
    report.error("Neovim " .. version .. " is too old: Strata's plugin needs 0.7 or newer")
  elseif vim.fn.has("nvim-0.11") == 1 then
    report.ok(
      "Neovim "
        .. version
        .. ': use vim.lsp.enable("strata") (lsp/strata.lua) or require("strata").setup()'
    )
  else
    report.ok("Neovim " .. version .. ': use require("strata").setup()')
  end

  report.start("strata binary")
  local cmd = configured_cmd()
  local bin = cmd[1]
  if vim.fn.executable(bin) ~= 1 then
    report.error("`" .. bin .. "` is not executable or not on PATH", {
      "Install it: `cargo install --path .` in a Strata checkout",
      'Or give its full path in `cmd`: vim.lsp.config("strata", { cmd = { "/path/to/strata", '
        .. '"serve", "--stdio" } }) on 0.11+, require("strata").setup({ cmd = ... }) before',
    })
  else
    report.ok("found " .. vim.fn.exepath(bin))
    local code, output = version_output(bin)
    if code == 0 and output ~= "" then
      report.ok("`" .. bin .. " --version`: " .. output)
    else
      report.error("`" .. bin .. " --version` failed (exit " .. code .. "): " .. output)
    end
  end

  report.start("Strata clients")
  local strata = require("strata")
  local clients = strata.get_clients(nil)
  if #clients == 0 then
    report.warn("no Strata client is running", {
      "Open a Rust, TypeScript or JavaScript file",
      'Neovim 0.11+: vim.lsp.enable("strata"); older: require("strata").setup()',
      "See the LSP log (:LspLog), and start the server with STRATA_LOG=debug for more",
    })
  else
    for _, client in ipairs(clients) do
      local root = client.config and client.config.root_dir or "?"
      report.ok(
        string.format(
          "client %d running, root %s, encoding %s",
          client.id,
          tostring(root),
          tostring(client.offset_encoding)
        )
      )
      local names = {}
      for bufnr in pairs(client.attached_buffers or {}) do
        table.insert(names, vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ":~:."))
      end
      if #names > 0 then
        report.ok("attached to " .. table.concat(names, ", "))
      else
        report.warn("attached to no buffer")
      end
    end
    local status = strata.status()
    if status ~= "" then
      report.info("status: " .. status)
    end
  end
end

return M
