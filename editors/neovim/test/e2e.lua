-- End-to-end test of the Neovim plugin against the real `strata` binary and a fake model
-- server (Ollama's NDJSON API, served from this process with vim.loop).
--
--   STRATA_BIN=/path/to/strata nvim --headless -u NONE -i NONE -n \
--     -c "luafile editors/neovim/test/e2e.lua"
--
-- Prints one line per check, then "N passed, N failed"; exits 1 on any failure or error,
-- and after TIMEOUT_MS whatever happens.

local uv = vim.uv or vim.loop

local TIMEOUT_MS = 240000 -- the whole run
local WAIT_MS = 30000 -- one step

local passed, failed = 0, 0
local finished = false

local buf -- the source buffer

local function out(line)
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

local function check(name, ok, detail)
  if ok then
    passed = passed + 1
    out("ok      " .. name)
  else
    failed = failed + 1
    out("FAILED  " .. name .. (detail and (": " .. tostring(detail)) or ""))
  end
  return ok
end

local function wait(ms, condition)
  return vim.wait(ms, condition, 20)
end

-- Whatever happens, never outlive the timeout.
local deadline = uv.new_timer()
deadline:start(TIMEOUT_MS, 0, function()
  if not finished then
    io.stdout:write(
      string.format(
        "FAILED  timed out after %d ms\n%d passed, %d failed\n",
        TIMEOUT_MS,
        passed,
        failed + 1
      )
    )
    io.stdout:flush()
    os.exit(1)
  end
end)

---------------------------------------------------------------------------------------------
-- Neovim's LSP log: what this run adds to it (the server's stderr among it) must hold no error.
-- Logged from WARN up at least; only the lines past its size now are this run's.

local lsp_log = require("vim.lsp.log")
if lsp_log.get_level() > lsp_log.levels.WARN then
  lsp_log.set_level(lsp_log.levels.WARN)
end
local log_path = lsp_log.get_filename()
local log_start = math.max(vim.fn.getfsize(log_path), 0)

-- This run's lines of the LSP log.
local function log_lines()
  local f = io.open(log_path, "r")
  if not f then
    return {}
  end
  f:seek("set", log_start)
  local lines = {}
  for line in f:lines() do
    table.insert(lines, line)
  end
  f:close()
  return lines
end

---------------------------------------------------------------------------------------------
-- Paths

local script = debug.getinfo(1, "S").source:gsub("^@", "")
local plugin_dir = vim.fn.fnamemodify(script, ":p:h:h") -- editors/neovim
vim.opt.runtimepath:prepend(plugin_dir)
vim.o.hidden = true
vim.o.showmode = false -- no "-- INSERT --" among the results
vim.opt.shortmess:append("c") -- nor "The only match"
vim.cmd("filetype on")

local bin = os.getenv("STRATA_BIN")

local tmp = vim.fn.tempname()
local workspace = tmp .. "/ws"
local cache = tmp .. "/cache"
vim.fn.mkdir(workspace .. "/.git", "p")
vim.fn.mkdir(workspace .. "/src", "p")
vim.fn.mkdir(cache, "p")

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

write(workspace .. "/Cargo.toml", '[package]\nname = "demo"\nversion = "0.1.0"\nedition = "2021"\n')
local source = table.concat({
  "fn add(a: u32, b: u32) -> u32 {",
  "    a + b",
  "}",
  "",
  "fn sub(a: u32, b: u32) -> u32 {",
  "    a - b",
  "}",
  "",
  "fn main() {",
  "    let n = add(1, 2);",
  "    ",
  '    println!("{n}");',
  "}",
  "",
}, "\n")
local file = workspace .. "/src/main.rs"
write(file, source)
-- A second file, never opened: workspace symbols find what it defines.
local other_file = workspace .. "/src/util.rs"
write(other_file, "pub fn multiply(a: u32, b: u32) -> u32 {\n    a * b\n}\n")

---------------------------------------------------------------------------------------------
-- The fake model server: /api/chat answers `fake.chat`, /api/generate completes the line
-- the prompt ends with towards `fake.line`.

local fake = {
  calls = {},
  hold = false, -- true: /api/chat requests get no answer (until the client hangs up)
  generate_delay_ms = 0, -- how long /api/generate takes to answer
  held = 0,
  dropped = 0, -- held requests the client hung up on
  chat = "",
  line = "    let total = add(40, 2);",
}

local function ndjson(objects)
  local lines = {}
  for _, o in ipairs(objects) do
    table.insert(lines, vim.json.encode(o))
  end
  return table.concat(lines, "\n") .. "\n"
end

local function stream_or_whole(body, pieces, wrap)
  local usage = { done = true, done_reason = "stop", prompt_eval_count = 10, eval_count = 5 }
  if not body.stream then
    local whole = wrap(table.concat(pieces))
    return vim.json.encode(vim.tbl_extend("force", whole, usage))
  end
  local objects = {}
  for _, piece in ipairs(pieces) do
    table.insert(objects, vim.tbl_extend("force", wrap(piece), { done = false }))
  end
  table.insert(objects, vim.tbl_extend("force", wrap(""), usage))
  return ndjson(objects)
end

local function chat_message(text)
  return {
    model = "coder",
    created_at = "2026-01-01T00:00:00Z",
    message = { role = "assistant", content = text },
  }
end

local function generate_message(text)
  return { model = "coder", created_at = "2026-01-01T00:00:00Z", response = text }
end

local function answer(path, raw)
  local ok, body = pcall(vim.json.decode, raw)
  if not ok or type(body) ~= "table" then
    return "400 Bad Request", '{"error":"bad json"}'
  end
  if path == "/api/chat" then
    -- In pieces, as a model streams.
    local pieces = {}
    for piece in fake.chat:gmatch("[^\n]*\n?") do
      if piece ~= "" then
        table.insert(pieces, piece)
      end
    end
    return "200 OK", stream_or_whole(body, pieces, chat_message)
  elseif path == "/api/generate" then
    local prompt = type(body.prompt) == "string" and body.prompt or ""
    local last = prompt:match("([^\n]*)$") or ""
    local rest = ""
    if #last > 0 and fake.line:sub(1, #last) == last then
      rest = fake.line:sub(#last + 1)
    end
    return "200 OK", stream_or_whole(body, { rest }, generate_message)
  end
  return "404 Not Found", '{"error":"not found"}'
end

local listener = uv.new_tcp()
assert(listener:bind("127.0.0.1", 0))
local function serve(sock)
  local buffer = ""
  sock:read_start(function(err, chunk)
    if err or not chunk then
      if not sock:is_closing() then
        sock:close()
      end
      return
    end
    buffer = buffer .. chunk
    local head_end = buffer:find("\r\n\r\n", 1, true)
    if not head_end then
      return
    end
    local head = buffer:sub(1, head_end - 1)
    local length = tonumber(head:lower():match("\ncontent%-length:%s*(%d+)")) or 0
    local body = buffer:sub(head_end + 4)
    if #body < length then
      return
    end
    sock:read_stop()
    local method, path = head:match("^(%S+)%s+(%S+)")
    -- Answered on the main loop, where every API is allowed (after the model's delay).
    local delay = path == "/api/generate" and fake.generate_delay_ms or 0
    vim.defer_fn(function()
      if fake.hold and path == "/api/chat" then
        fake.held = fake.held + 1
        sock:read_start(function(_, data)
          if not data then
            fake.dropped = fake.dropped + 1
            if not sock:is_closing() then
              sock:close()
            end
          end
        end)
        return
      end
      local status, payload = answer(path, body)
      table.insert(fake.calls, { method = method, path = path, body = body, status = status })
      local response = table.concat({
        "HTTP/1.1 " .. status,
        "Content-Type: application/x-ndjson",
        "Content-Length: " .. #payload,
        "Connection: close",
        "",
        payload,
      }, "\r\n")
      if sock:is_closing() then
        return
      end
      sock:write(response, function()
        if not sock:is_closing() then
          sock:shutdown(function()
            if not sock:is_closing() then
              sock:close()
            end
          end)
        end
      end)
    end, delay)
  end)
end
assert(listener:listen(32, function(err)
  if err then
    return
  end
  local sock = uv.new_tcp()
  listener:accept(sock)
  serve(sock)
end))
local port = listener:getsockname().port

local function calls_to(path)
  local list = {}
  for _, c in ipairs(fake.calls) do
    if c.path == path then
      table.insert(list, c)
    end
  end
  return list
end

local config = tmp .. "/config.toml"
write(
  config,
  table.concat({
    "[providers.local]",
    'kind = "ollama"',
    'url = "http://127.0.0.1:' .. port .. '"',
    'model = "coder"',
    "retries = 0",
    "[completion]",
    "debounce_max_ms = 40",
    "",
  }, "\n")
)

---------------------------------------------------------------------------------------------
-- Recording what the server sends

local progress = {} -- every $/progress, in order
local default_progress = vim.lsp.handlers["$/progress"]
vim.lsp.handlers["$/progress"] = function(err, result, ctx, cfg)
  table.insert(progress, result)
  return default_progress(err, result, ctx, cfg)
end

local notes = {} -- every vim.notify
local default_notify = vim.notify
vim.notify = function(message, level, opts)
  table.insert(notes, tostring(message))
  if level and level >= vim.log.levels.ERROR then
    out("notify: " .. tostring(message))
  end
end

-- Deprecated functions the plugin or this test call. 0.12 echoes the first such warning
-- instead of notifying, and only once; vim.deprecate sees every call.
local deprecations = {}
local default_deprecate = vim.deprecate
if default_deprecate then
  vim.deprecate = function(name, ...)
    -- 1: this function, 2: the deprecated one, 3: its caller.
    local caller = debug.getinfo(3, "S")
    local source = caller and caller.source or ""
    if source:sub(1, 1) == "@" then
      source = vim.fn.fnamemodify(source:sub(2), ":p")
      if source:find(plugin_dir, 1, true) == 1 then
        table.insert(deprecations, name .. " (" .. source .. ")")
      end
    end
    return default_deprecate(name, ...)
  end
end

local messages = {} -- every window/showMessage
vim.lsp.handlers["window/showMessage"] = function(_, result)
  table.insert(messages, result.message)
  out("server: " .. result.message:gsub("\n", " "))
end

local function buffer_text(buf)
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
end

local function find_line(buf, pattern)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    if line:find(pattern, 1, true) then
      return i
    end
  end
end

-- Closes the window a command opened (or, when it used the current one, shows the source again).
local function back_to_source()
  if #vim.api.nvim_tabpage_list_wins(0) > 1 then
    vim.cmd("close")
  end
  vim.api.nvim_set_current_buf(buf)
end

local function scratch_buffers(prefix)
  local list = {}
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b):find(prefix, 1, true) then
      table.insert(list, b)
    end
  end
  return list
end

---------------------------------------------------------------------------------------------
-- The checks

local strata = require("strata")
local client

local ended = {} -- every strata/runEnded, as strata.last_run() had it
vim.api.nvim_create_autocmd("User", {
  pattern = "StrataRunEnded",
  callback = function()
    table.insert(ended, strata.last_run())
  end,
})

local function test_lsp_config()
  local cfg = dofile(plugin_dir .. "/lsp/strata.lua")
  check(
    "lsp/strata.lua: cmd",
    vim.deep_equal(cfg.cmd, { "strata", "serve", "--stdio" }),
    vim.inspect(cfg.cmd)
  )
  check(
    "lsp/strata.lua: filetypes",
    vim.tbl_contains(cfg.filetypes, "rust") and vim.tbl_contains(cfg.filetypes, "typescriptreact")
  )
  check(
    "lsp/strata.lua: root_markers",
    vim.deep_equal(cfg.root_markers, { ".git", "Cargo.toml", "package.json" })
  )
  check(
    "lsp/strata.lua: init_options and settings are JSON objects",
    vim.json.encode(cfg.init_options) == "{}"
      and vim.json.encode(cfg.settings) == '{"strata":{"config":{}}}',
    vim.json.encode(cfg.init_options) .. " " .. vim.json.encode(cfg.settings)
  )
  check(
    "lsp/strata.lua: status handler",
    type(cfg.handlers) == "table" and type(cfg.handlers["strata/status"]) == "function"
  )
  check(
    "lsp/strata.lua: run-ended handler",
    type(cfg.handlers) == "table" and type(cfg.handlers["strata/runEnded"]) == "function"
  )
  check("lsp/strata.lua leaves on_attach to the user", cfg.on_attach == nil)
end

local function test_attach()
  -- The user's own on_attach, which must not take the place of the plugin's.
  local user_attached = {}
  local overrides = {
    cmd = { bin, "serve", "--stdio" },
    cmd_env = {
      STRATA_CONFIG = config,
      STRATA_CACHE_DIR = cache,
      STRATA_DATA_DIR = cache .. "/data",
      STRATA_LOG = os.getenv("STRATA_LOG") or "warn",
    },
    on_attach = function(c, bufnr)
      table.insert(user_attached, { name = c.name, bufnr = bufnr })
    end,
  }
  -- As the docs say: vim.lsp.enable on 0.11+ (lsp/strata.lua, commands from plugin/strata.lua),
  -- setup() before. STRATA_E2E_SETUP=1 takes setup() on 0.11+ too.
  if vim.fn.has("nvim-0.11") == 1 and os.getenv("STRATA_E2E_SETUP") ~= "1" then
    out("# Neovim 0.11+: vim.lsp.config + vim.lsp.enable")
    vim.cmd("runtime! plugin/strata.lua")
    vim.lsp.config("strata", overrides)
    vim.lsp.enable("strata")
  else
    out("# require('strata').setup()")
    strata.setup(overrides)
  end
  check("commands exist", vim.fn.exists(":StrataAsk") == 2 and vim.fn.exists(":StrataContext") == 2)
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  buf = vim.api.nvim_get_current_buf()
  check("buffer is rust", vim.bo[buf].filetype == "rust", vim.bo[buf].filetype)
  local attached = wait(WAIT_MS, function()
    client = strata.get_clients(buf)[1]
    return client ~= nil
      and client.server_capabilities ~= nil
      and client.server_capabilities.codeActionProvider ~= nil
  end)
  if not check("client attaches and initializes", attached) then
    error("no client: the rest cannot run")
  end
  check("root is the workspace", client.config.root_dir == workspace, client.config.root_dir)
  check(
    "the user's own on_attach runs for the buffer",
    #user_attached == 1 and user_attached[1].bufnr == buf and user_attached[1].name == "strata",
    vim.inspect(user_attached)
  )
  -- The plugin's buffer setup happened all the same, once.
  local found, complete_done = pcall(vim.api.nvim_get_autocmds, {
    group = "strata_buffer",
    event = "CompleteDone",
    buffer = buf,
  })
  check(
    "the plugin set up the buffer as well",
    found and #complete_done == 1,
    vim.inspect(complete_done)
  )
  if vim.lsp.inline_completion then
    check(
      "with the user's on_attach, inline completion is still on in the buffer",
      vim.lsp.inline_completion.is_enabled({ bufnr = buf })
    )
  end
  local caps = client.server_capabilities
  if vim.fn.has("nvim-0.12") == 1 then
    -- 0.12 announces inline completion: the server serves suggestions that way, not as items.
    check(
      "server offers inline completion, not completion items",
      caps.inlineCompletionProvider ~= nil and caps.completionProvider == nil,
      vim.inspect({ caps.inlineCompletionProvider, caps.completionProvider })
    )
    check("no omnifunc without completion items", vim.bo[buf].omnifunc == "", vim.bo[buf].omnifunc)
  else
    check("omnifunc set", vim.bo[buf].omnifunc == "v:lua.vim.lsp.omnifunc", vim.bo[buf].omnifunc)
    check(
      "server offers completion items",
      caps.completionProvider ~= nil and caps.inlineCompletionProvider == nil
    )
  end
  local cmds = client.server_capabilities.executeCommandProvider
      and client.server_capabilities.executeCommandProvider.commands
    or {}
  check(
    "server offers strata.runAgent",
    vim.tbl_contains(cmds, "strata.runAgent"),
    vim.inspect(cmds)
  )
end

local function test_status()
  local got = wait(WAIT_MS, function()
    return strata.status_table() ~= nil
  end)
  check("strata/status arrives", got)
  local s = strata.status_table() or {}
  check(
    "strata/status has its fields",
    type(s.inFlight) == "number" and type(s.offline) == "boolean",
    vim.inspect(s)
  )
  check("status() for statuslines", strata.status():match("^Strata") ~= nil, strata.status())
end

-- The items of the symbol list `what` ("loclist" of window `win`, or "qflist") once a list
-- titled `title` (a prefix) replaces the one with id `since`, as { text, file } each.
local function symbol_list(what, win, since, title)
  local function get(args)
    if what == "loclist" then
      return vim.fn.getloclist(win, args)
    end
    return vim.fn.getqflist(args)
  end
  local list = get({ id = 0, title = 1, items = 1 })
  if list.id == since or type(list.title) ~= "string" or list.title:sub(1, #title) ~= title then
    return nil
  end
  local items = {}
  for _, item in ipairs(list.items) do
    local name = item.bufnr > 0 and vim.api.nvim_buf_get_name(item.bufnr) or ""
    table.insert(items, { text = item.text, file = vim.fn.fnamemodify(name, ":p") })
  end
  return items
end

local function list_id(what, win)
  if what == "loclist" then
    return vim.fn.getloclist(win, { id = 0 }).id
  end
  return vim.fn.getqflist({ id = 0 }).id
end

-- Closes the symbol lists Neovim opened and goes back to the source window.
local function close_lists(win)
  vim.api.nvim_set_current_win(win)
  vim.cmd("silent! lclose")
  vim.cmd("silent! cclose")
  vim.api.nvim_set_current_buf(buf)
end

-- As a user would: vim.lsp.buf.document_symbol(). Neovim shows the symbols in the window's
-- location list (0.12) or in the quickfix list (0.7).
local function test_document_symbols()
  vim.api.nvim_set_current_buf(buf)
  local win = vim.api.nvim_get_current_win()
  local loclist, qflist = list_id("loclist", win), list_id("qflist", win)
  vim.lsp.buf.document_symbol()
  local items
  wait(WAIT_MS, function()
    items = symbol_list("loclist", win, loclist, "Symbols in")
      or symbol_list("qflist", win, qflist, "Symbols in")
    return items ~= nil
  end)
  close_lists(win)
  local texts = {}
  local here = true
  for _, item in ipairs(items or {}) do
    table.insert(texts, item.text)
    here = here and item.file == file
  end
  check(
    "vim.lsp.buf.document_symbol() lists the file's functions",
    vim.tbl_contains(texts, "[Function] add")
      and vim.tbl_contains(texts, "[Function] sub")
      and vim.tbl_contains(texts, "[Function] main"),
    vim.inspect(items)
  )
  check("each symbol is in the file", items ~= nil and #items > 0 and here, vim.inspect(items))
end

-- As a user would: vim.lsp.buf.workspace_symbol("multiply"), for a function of a file that was
-- never opened. Neovim shows the symbols in the quickfix list.
local function test_workspace_symbols()
  vim.api.nvim_set_current_buf(buf)
  local win = vim.api.nvim_get_current_win()
  local items
  -- The workspace is indexed in the background: ask until the archive has the file.
  wait(WAIT_MS, function()
    local since, noted = list_id("qflist", win), #notes
    vim.lsp.buf.workspace_symbol("multiply")
    wait(WAIT_MS, function()
      items = symbol_list("qflist", win, since, "Symbols matching 'multiply'")
      return items ~= nil or #notes > noted -- "No symbols found"
    end)
    close_lists(win)
    for _, item in ipairs(items or {}) do
      if item.text == "[Function] multiply" then
        return true
      end
    end
    wait(200, function()
      return false
    end)
    return false
  end)
  local hit
  for _, item in ipairs(items or {}) do
    if item.text == "[Function] multiply" then
      hit = item
    end
  end
  check(
    "vim.lsp.buf.workspace_symbol() finds a function defined in another file",
    hit ~= nil,
    vim.inspect(items)
  )
  check("the symbol is listed with its file", hit and hit.file == other_file, vim.inspect(hit))
end

-- The code-action menu as a user opens it (vim.lsp.buf.code_action()), with vim.ui.select
-- played by the test: returns the titles it offered, after choosing the first action for which
-- `choose(action)` is true (none without `choose`).
local function code_action_menu(choose)
  local offered
  local default_select = vim.ui.select
  vim.ui.select = function(items, _, on_choice)
    offered = {}
    local chosen
    for _, item in ipairs(items) do
      local action = item.action or item[2] -- 0.10+: { action, ctx }; before: { client_id, action }
      table.insert(offered, action.title)
      if not chosen and choose and choose(action) then
        chosen = item
      end
    end
    on_choice(chosen)
  end
  vim.lsp.buf.code_action()
  wait(WAIT_MS, function()
    return offered ~= nil
  end)
  vim.ui.select = default_select
  return offered or {}
end

-- The agents' titles in the menu, as server/agents/mod.rs and server/lsp/agents.rs name them
-- ("fix" needs diagnostics: see test_review).
local MENU_TITLES = {
  "Strata: Explain this code",
  "Strata: Write documentation comments",
  "Strata: Write tests",
  "Strata: Refactor for clarity",
  "Strata: Review this code",
  "Strata: Review all (security, performance, style)",
}

local function test_code_action_menu()
  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_win_set_cursor(0, { find_line(buf, "fn add"), 4 })
  local offered = code_action_menu()
  for _, title in ipairs(MENU_TITLES) do
    check(
      'the code-action menu offers "' .. title .. '"',
      vim.tbl_contains(offered, title),
      vim.inspect(offered)
    )
  end
end

local function code_actions()
  vim.api.nvim_win_set_cursor(0, { find_line(buf, "fn add"), 4 })
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {} }
  local responses = vim.lsp.buf_request_sync(buf, "textDocument/codeAction", params, WAIT_MS) or {}
  local r = responses[client.id]
  return r and r.result or {}, r and r.err
end

local function test_code_actions()
  local actions, err = code_actions()
  check("codeAction answers", err == nil and #actions > 0, err and err.message)
  local agents, titles_ok = {}, true
  for _, a in ipairs(actions) do
    if not a.title:match("^Strata:") then
      titles_ok = false
    end
    local cmd = a.command or {}
    if cmd.command == "strata.runAgent" and cmd.arguments and cmd.arguments[1] then
      agents[cmd.arguments[1].agent] = true
    end
  end
  check("action titles start with Strata:", titles_ok)
  for _, name in ipairs({ "explain", "document", "tests", "refactor", "review" }) do
    check("agent listed: " .. name, agents[name] == true, vim.inspect(vim.tbl_keys(agents)))
  end
end

-- The server's messages since `since` that contain `text`.
local function told(since, text)
  local found = {}
  for i = since + 1, #messages do
    if messages[i]:find(text, 1, true) then
      table.insert(found, messages[i])
    end
  end
  return found
end

-- Waits for the strata/runEnded of a run of `agent` after the first `since` in `ended`; returns
-- its result.
local function run_ended(since, agent)
  local found
  wait(WAIT_MS, function()
    for i = since + 1, #ended do
      local result = ended[i].result
      if type(result) == "table" and result.agent == agent then
        found = result
        return true
      end
    end
    return false
  end)
  return found
end

local function agent_tokens(since)
  local begun, ended, reports = {}, {}, 0
  for i = since + 1, #progress do
    local p = progress[i]
    local token = tostring(p.token)
    if token:match("^strata%-agent") and type(p.value) == "table" then
      if p.value.kind == "begin" then
        begun[token] = p.value.title
      elseif p.value.kind == "end" then
        ended[token] = true
      elseif p.value.kind == "report" then
        reports = reports + 1
      end
    end
  end
  return begun, ended, reports
end

local function test_document_agent()
  fake.chat = "```rust\n/// Adds two numbers.\nfn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n```"
  local since = #progress
  local said, noted, before = #messages, #notes, #ended
  local chats = #calls_to("/api/chat")
  local original = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  -- As a user would: the code action menu, choosing the document agent.
  vim.api.nvim_win_set_cursor(0, { find_line(buf, "fn add"), 4 })
  local offered = code_action_menu(function(action)
    local args = action.command and action.command.arguments and action.command.arguments[1]
    return args and args.agent == "document"
  end)
  local changed = wait(WAIT_MS, function()
    return find_line(buf, "/// Adds two numbers.") ~= nil
  end)
  check("document agent edits the buffer through applyEdit", changed, vim.inspect(offered))
  local lines = vim.api.nvim_buf_get_lines(buf, 0, 5, false)
  check(
    "the edit replaced the function",
    vim.deep_equal(lines, {
      "/// Adds two numbers.",
      "fn add(a: u32, b: u32) -> u32 {",
      "    a + b",
      "}",
      "",
    }),
    vim.inspect(lines)
  )
  check("the model was asked on /api/chat", #calls_to("/api/chat") > chats)
  local ok = wait(WAIT_MS, function()
    local begun, ended = agent_tokens(since)
    for token in pairs(begun) do
      if ended[token] then
        return true
      end
    end
    return false
  end)
  local begun, _, reports = agent_tokens(since)
  local title = select(2, next(begun))
  check("$/progress begin and end for the agent run", ok, vim.inspect(progress))
  check(
    "progress title names the agent",
    type(title) == "string" and title:match("^Strata:") ~= nil,
    title
  )
  check("progress reports on the way", reports > 0)
  local result = run_ended(before, "document")
  check(
    "strata/runEnded reaches the plugin with the run's result",
    type(result) == "table" and result.agent == "document" and result.applied == true,
    vim.inspect(result)
  )
  local line = "Strata: Write documentation comments — applied to `add`"
  check("the server says how the run ended", #told(said, line) == 1, vim.inspect(messages))
  check(
    "the plugin does not say it again",
    #vim.tbl_filter(function(n)
      return n:find("applied", 1, true) ~= nil
    end, vim.list_slice(notes, noted + 1)) == 0,
    table.concat(notes, "\n")
  )
  vim.cmd("silent undo")
  local undone = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  check(
    "one undo gives back the buffer as it was before the edit from the cursor",
    vim.deep_equal(undone, original),
    vim.inspect(undone)
  )
end

-- The review agent from the menu: its finding shows as a diagnostic, the menu at that line
-- offers the suggested fix, and applying it changes the line and clears the finding.
local function test_review()
  vim.api.nvim_set_current_buf(buf)
  fake.chat = table.concat({
    "Here is what I found:",
    '{"line": 2, "severity": "warning", "message": "may overflow", '
      .. '"suggestion": "    a.saturating_add(b)"}',
    "",
  }, "\n")
  local said, before = #messages, #ended
  local row = find_line(buf, "    a + b") -- the body of `add`
  vim.api.nvim_win_set_cursor(0, { find_line(buf, "fn add"), 4 })
  code_action_menu(function(action)
    return action.title == "Strata: Review this code"
  end)
  local function findings()
    return vim.tbl_filter(function(d)
      return d.source == "strata"
    end, vim.diagnostic.get(buf))
  end
  local shown = wait(WAIT_MS, function()
    return #findings() > 0
  end)
  local finding = findings()[1] or {}
  check(
    "review shows its finding as a diagnostic from strata",
    shown and finding.message == "may overflow",
    vim.inspect(vim.diagnostic.get(buf))
  )
  check(
    "the finding is on the line it flags, as a warning",
    finding.lnum == row - 1 and finding.severity == vim.diagnostic.severity.WARN,
    vim.inspect(finding)
  )
  local result = run_ended(before, "review")
  check(
    "the review run ended with one finding",
    type(result) == "table" and result.findings == 1,
    vim.inspect(result)
  )
  check(
    "the server says how the review ended",
    #told(said, "Strata: Review this code — 1 finding") == 1,
    vim.inspect(messages)
  )
  -- The menu at the flagged line, choosing the fix.
  local fix = "Strata: apply the suggested fix (may overflow)"
  vim.api.nvim_win_set_cursor(0, { row, 4 })
  local offered = code_action_menu(function(action)
    return action.title == fix
  end)
  check(
    "the code-action menu at the finding offers its fix",
    vim.tbl_contains(offered, fix),
    vim.inspect(offered)
  )
  check(
    'the code-action menu at the finding offers "Strata: Fix these problems"',
    vim.tbl_contains(offered, "Strata: Fix these problems"),
    vim.inspect(offered)
  )
  local function line()
    return vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1]
  end
  check(
    "applying the fix changes the line",
    wait(WAIT_MS, function()
      return line() == "    a.saturating_add(b)"
    end),
    line()
  )
  check(
    "the finding goes once its line is fixed",
    wait(WAIT_MS, function()
      return #findings() == 0
    end),
    vim.inspect(findings())
  )
end

local function complete_at(row, col)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    position = { line = row, character = col },
  }
  local responses = vim.lsp.buf_request_sync(buf, "textDocument/completion", params, WAIT_MS) or {}
  local r = responses[client.id]
  return r and r.result
end

-- Neovim 0.7–0.10: the built-in omnifunc, as a user invokes it. On a new line typed without
-- any completion request, <C-x><C-o> sends one request; the model takes 800 ms; the server holds
-- that request until the suggestion is ready, so the menu opens with it, with no second request
-- (0.7's omnifunc shows each server's answer as it arrives).
local function test_omnifunc_waits_for_the_suggestion(row)
  -- The menu even for one match, nothing inserted until <C-y>.
  vim.o.completeopt = "menu,menuone,noinsert"
  local typed = "    let total = ad"
  vim.api.nvim_buf_set_lines(buf, row, row, false, { typed })
  fake.generate_delay_ms = 800
  local shown = nil
  local driver = uv.new_timer()
  local since, phase = uv.now(), "asking"
  local function feed(keys)
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "t", false)
  end
  driver:start(
    50,
    50,
    vim.schedule_wrap(function()
      if phase == "asking" then
        phase = "waiting"
        feed("<C-x><C-o>")
      elseif phase == "waiting" then
        local info = vim.fn.complete_info({ "pum_visible", "items" })
        local first = info.items and info.items[1]
        if info.pum_visible == 1 and first then
          shown = first.word
          phase = "done"
          feed("<C-y><Esc>")
        elseif uv.now() - since > WAIT_MS then
          phase = "done"
          feed("<Esc>")
        end
      end
    end)
  )
  vim.api.nvim_win_set_cursor(0, { row + 1, 0 })
  vim.api.nvim_feedkeys("A", "xt!", false)
  driver:stop()
  driver:close()
  fake.generate_delay_ms = 0
  check(
    "<C-x><C-o> opens the menu with the model's suggestion once it is ready, without asking again",
    shown == "add(40, 2);",
    vim.inspect(shown)
  )
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
  check("accepting it from the omnifunc's menu inserts the whole suggestion", line == fake.line, line)
  vim.api.nvim_buf_set_lines(buf, row, row + 1, false, {})
end

-- Neovim 0.7–0.11: completion items, asked for as completion plugins do.
local function test_completion_items(row)
  local col = 4
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
  -- Typing, with a completion request after each keystroke as completion plugins do.
  for c in ("let total = ad"):gmatch(".") do
    vim.api.nvim_buf_set_text(buf, row, col, row, col, { c })
    col = col + 1
    vim.api.nvim_win_set_cursor(0, { row + 1, col })
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(buf) },
      position = { line = row, character = col },
    }
    vim.lsp.buf_request(buf, "textDocument/completion", params, function() end)
    wait(30, function()
      return false
    end)
  end
  -- The suggestion arrives on a later request: ask until it is there.
  local item, result
  local got = wait(WAIT_MS, function()
    result = complete_at(row, col)
    local items = type(result) == "table" and (result.items or result) or {}
    item = items[1]
    if item and item.textEdit and item.textEdit.newText == "add(40, 2);" then
      return true
    end
    wait(100, function()
      return false
    end)
    return false
  end)
  check("completion item with the model's suggestion", got, vim.inspect(result))
  if got then
    check("completion list is incomplete", result.isIncomplete == true)
    check("item detail", item.detail == "Strata: model suggestion", item.detail)
    check(
      "item replaces the word before the cursor",
      item.textEdit.range.start.character == col - 2 and item.textEdit.range["end"].character == col,
      vim.inspect(item.textEdit.range)
    )
    local to_items = vim.lsp.util.text_document_completion_list_to_complete_items
    if vim.lsp.completion and vim.lsp.completion._lsp_to_complete_items then
      to_items = vim.lsp.completion._lsp_to_complete_items
    end
    local matches = to_items(result, "ad", client.id)
    local kept = matches[1] and matches[1].user_data.nvim.lsp.completion_item
    check(
      "Neovim's completion keeps the item",
      kept and kept.textEdit.newText == "add(40, 2);",
      vim.inspect(matches)
    )
    -- Accepted from the popup as with the omnifunc: complete(), then <C-y>.
    vim.o.completeopt = "menu"
    _G.strata_e2e_complete = function()
      vim.fn.complete(col - 1, matches)
    end
    vim.api.nvim_buf_set_keymap(buf, "i", "<F12>", "<Cmd>lua strata_e2e_complete()<CR>", {})
    vim.api.nvim_win_set_cursor(0, { row + 1, col })
    vim.api.nvim_feedkeys(
      vim.api.nvim_replace_termcodes("A<F12><C-y><Esc>", true, false, true),
      "x",
      false
    )
    local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
    check("accepting the item inserts the whole suggestion", line == fake.line, line)
  end
  if vim.fn.has("nvim-0.11") == 0 then
    test_omnifunc_waits_for_the_suggestion(row + 1)
  end
end

-- The text Neovim's inline completion shows in `bufnr` (its extmarks' virtual text), or nil.
local function ghost_text(bufnr)
  local ns = vim.api.nvim_get_namespaces()["nvim.lsp.inline_completion"]
  if not ns then
    return nil
  end
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
  local mark = marks[1]
  if not mark then
    return nil
  end
  local function join(chunks)
    local parts = {}
    for _, chunk in ipairs(chunks or {}) do
      if chunk[2] == "ComplHint" then
        table.insert(parts, chunk[1])
      end
    end
    return table.concat(parts)
  end
  local lines = { join(mark[4].virt_text) }
  for _, line in ipairs(mark[4].virt_lines or {}) do
    table.insert(lines, join(line))
  end
  return table.concat(lines, "\n")
end

-- Neovim 0.12+: inline completion, as the guide sets it up, typed in insert mode key by key.
-- Insert mode runs inside nvim_feedkeys; a timer plays the user. It types up to "ad", then
-- pauses: no further key, so the request Neovim sent after the last keystroke must bring the
-- suggestion (the server holds it until the model has answered). Once ghost text shows, it
-- accepts it with the guide's <Tab>.
local function test_inline_completion(row)
  check(
    "inline completion is on in Strata's buffer",
    vim.lsp.inline_completion.is_enabled({ bufnr = buf })
  )
  -- The guide's mapping.
  vim.keymap.set("i", "<Tab>", function()
    if not vim.lsp.inline_completion.get() then
      return "<Tab>"
    end
  end, { expr = true, desc = "Accept the current inline completion" })

  local answered = 0 -- inline completion requests answered
  local pending = 0 -- and those still waiting for their answer
  local group = vim.api.nvim_create_augroup("strata_e2e_inline", { clear = true })
  vim.api.nvim_create_autocmd("LspRequest", {
    group = group,
    callback = function(args)
      local r = args.data and args.data.request
      if not r or r.method ~= "textDocument/inlineCompletion" then
        return
      end
      if r.type == "pending" then
        pending = pending + 1
      elseif r.type == "complete" or r.type == "cancel" then
        pending = pending - 1
        if r.type == "complete" then
          answered = answered + 1
        end
      end
    end,
  })

  local function line()
    return vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
  end
  local function feed(keys)
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "t", false)
  end
  local burst = "    let total = ad"
  local shown, before = nil, nil -- the ghost text, and the line it showed on
  local phase, since = "typing", uv.now()
  local driver = uv.new_timer()
  local function done()
    phase = "done"
    feed("<Esc>")
  end
  driver:start(
    40,
    40,
    vim.schedule_wrap(function()
      local typed = line()
      if phase == "typing" then
        if #typed < #burst then
          feed(burst:sub(#typed + 1, #typed + 1))
        else
          phase, since = "waiting", uv.now()
        end
      elseif phase == "waiting" then
        local text = ghost_text(buf)
        if text and text ~= "" then
          shown, before = text, typed
          phase, since = "accepting", uv.now()
          feed("<Tab>")
        elseif uv.now() - since > WAIT_MS then
          done()
        end
      elseif phase == "accepting" then
        if typed ~= before or uv.now() - since > WAIT_MS then
          done()
        end
      end
    end)
  )
  vim.api.nvim_win_set_cursor(0, { row + 1, 0 })
  -- "!": stay in insert mode until the timer types <Esc>.
  vim.api.nvim_feedkeys("A", "xt!", false)
  driver:stop()
  driver:close()
  -- Leaving insert mode does not stop the timer Neovim's inline completion set at the last
  -- cursor move (200 ms): its request may still go out. Let it, and let it be answered, before
  -- going on, as a user who does not quit Neovim at once (else it meets the shutdown, and the
  -- server's warning about it lands in the LSP log as an error).
  local quiet_since = uv.now()
  wait(WAIT_MS, function()
    if pending > 0 then
      quiet_since = uv.now()
    end
    return pending <= 0 and uv.now() - quiet_since > 400
  end)
  vim.api.nvim_del_augroup_by_id(group)
  out(string.format("# inline: %d answer(s)", answered))
  -- Held requests a keystroke superseded are answered (empty) as the edit arrives; none is left
  -- waiting.
  check("every inline completion request was answered or cancelled", pending <= 0, pending)
  check(
    "after typing and pausing, with no further key, the suggestion shows as ghost text",
    shown ~= nil and before .. shown == fake.line,
    vim.inspect({ typed = before, shown = shown })
  )
  check("accepting it with <Tab> inserts the whole suggestion", line() == fake.line, line())
  check("back in normal mode", vim.api.nvim_get_mode().mode == "n", vim.api.nvim_get_mode().mode)
end

local function test_completion()
  local row = find_line(buf, "let n = add(1, 2);") -- the empty line below it, zero-based
  check("empty line found", vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] == "    ")
  local generates = #calls_to("/api/generate")
  if vim.fn.has("nvim-0.12") == 1 then
    test_inline_completion(row)
  else
    test_completion_items(row)
  end
  local calls = calls_to("/api/generate")
  check("the model was asked on /api/generate", #calls > generates)
  -- The first call was made while typing the line (later ones may follow: 0.12 asks again
  -- after accepting, at the end of the completed line).
  local first = calls[generates + 1]
  local tail = first and (vim.json.decode(first.body).prompt or ""):match("([^\n]*)$") or ""
  local typed = "    let total = ad"
  check("the prompt ends on the line being typed", #tail > 4 and typed:sub(1, #tail) == tail, tail)
end

local function test_context_command()
  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_win_set_cursor(0, { find_line(buf, "fn sub"), 4 })
  vim.cmd("StrataContext")
  local shown
  local ok = wait(WAIT_MS, function()
    shown = scratch_buffers("strata://context")[1]
    return shown ~= nil
  end)
  check(":StrataContext opens a buffer", ok)
  if ok then
    check(
      ":StrataContext buffer is markdown",
      vim.bo[shown].filetype == "markdown",
      vim.bo[shown].filetype
    )
    check(
      ":StrataContext shows the pack",
      buffer_text(shown):find("fn sub", 1, true) ~= nil,
      buffer_text(shown):sub(1, 400)
    )
    back_to_source()
  end
end

local function test_stats_command()
  vim.api.nvim_set_current_buf(buf)
  vim.cmd("StrataStats")
  local shown
  local ok = wait(WAIT_MS, function()
    shown = scratch_buffers("strata://stats")[1]
    return shown ~= nil
  end)
  check(":StrataStats opens a buffer", ok)
  if ok then
    check(":StrataStats buffer is json", vim.bo[shown].filetype == "json")
    local parsed_ok, stats = pcall(vim.json.decode, buffer_text(shown))
    check(":StrataStats shows valid JSON", parsed_ok, stats)
    check(
      ":StrataStats counts completions",
      parsed_ok and stats.completion and stats.completion.requests > 0
    )
    back_to_source()
  end
end

local function test_chat_command()
  vim.api.nvim_set_current_buf(buf)
  vim.cmd("StrataChat")
  local chat_buf
  local ok = wait(WAIT_MS, function()
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_get_name(b):match("%.strata%.md$") then
        chat_buf = b
        return true
      end
    end
    return false
  end)
  check(":StrataChat opens a new chat file", ok, table.concat(notes, "\n"))
  if ok then
    check(
      "the chat file holds the template",
      buffer_text(chat_buf):find("## You", 1, true) ~= nil,
      buffer_text(chat_buf)
    )
    -- As a user would: write below the last "## You", then send from the code-action menu.
    vim.api.nvim_set_current_buf(chat_buf)
    local attached = wait(WAIT_MS, function()
      return #strata.get_clients(chat_buf) > 0
    end)
    check("Strata is attached to the chat file", attached)
    local last = vim.api.nvim_buf_line_count(chat_buf)
    vim.api.nvim_buf_set_lines(chat_buf, last, last, false, { "What does add do?" })
    fake.chat = "It adds its two arguments."
    vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(chat_buf), 0 })
    local offered = code_action_menu(function(action)
      return action.title == "Strata: send"
    end)
    local answered = wait(WAIT_MS, function()
      return buffer_text(chat_buf):find("It adds its two arguments.", 1, true) ~= nil
    end)
    check(
      "Strata: send answers in the chat",
      answered,
      vim.inspect(offered) .. "\n" .. buffer_text(chat_buf)
    )
    vim.cmd("silent! write")
    back_to_source()
  end
end

local function test_ask_explain()
  vim.api.nvim_set_current_buf(buf)
  fake.chat = "`sub` subtracts `b` from `a`."
  local first = find_line(buf, "fn sub")
  local since, said, before = #progress, #messages, #ended
  vim.cmd(string.format("%d,%dStrataAsk explain what does it do?", first, first + 2))
  local answer_buf
  local ok = wait(WAIT_MS, function()
    answer_buf = scratch_buffers("answers")[1]
    return answer_buf ~= nil
  end)
  check(":StrataAsk explain opens the answer", ok, table.concat(notes, "\n"))
  if ok then
    check(
      "the answer holds the model's text",
      buffer_text(answer_buf):find("subtracts", 1, true) ~= nil,
      buffer_text(answer_buf)
    )
    back_to_source()
  end
  local last = calls_to("/api/chat")
  last = last[#last]
  check(
    ":StrataAsk sends the question",
    last and last.body:find("what does it do?", 1, true) ~= nil
  )
  local begun = agent_tokens(since)
  check(":StrataAsk reports progress", next(begun) ~= nil)
  local result = run_ended(before, "explain")
  check(
    "the explain run ended with its answer's path",
    type(result) == "table" and type(result.path) == "string",
    vim.inspect(result)
  )
  -- Opened by the server (window/showDocument) or, where Neovim cannot, by the plugin.
  local line = result and result.shown and "Strata: Explain this code — answered"
    or "Strata: Explain this code — the answer is in "
  check("the server says where the answer is", #told(said, line) == 1, vim.inspect(messages))
end

local function test_ask_document_visual()
  vim.api.nvim_set_current_buf(buf)
  fake.chat = "```rust\n/// Subtracts b from a.\nfn sub(a: u32, b: u32) -> u32 {\n    a - b\n}\n```"
  local first = find_line(buf, "fn sub")
  -- A charwise visual selection over the function, then :'<,'>StrataAsk document.
  local original = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  vim.api.nvim_win_set_cursor(0, { first, 0 })
  vim.cmd(string.format("normal! v%dG$\27", first + 2))
  vim.cmd("'<,'>StrataAsk document")
  local ok = wait(WAIT_MS, function()
    return find_line(buf, "/// Subtracts b from a.") ~= nil
  end)
  check(":StrataAsk document on a visual selection edits it", ok, table.concat(notes, "\n"))
  local at = find_line(buf, "/// Subtracts b from a.") or 1
  local lines = vim.api.nvim_buf_get_lines(buf, at - 1, at + 3, false)
  check("the selection was replaced once", vim.deep_equal(lines, {
    "/// Subtracts b from a.",
    "fn sub(a: u32, b: u32) -> u32 {",
    "    a - b",
    "}",
  }) and select(2, buffer_text(buf):gsub("fn sub", "")) == 1, vim.inspect(lines))
  vim.cmd("silent undo")
  local undone = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  check(
    "one undo gives back the buffer as it was before the edit from the selection",
    vim.deep_equal(undone, original),
    vim.inspect(undone)
  )
end

local function test_cancel()
  vim.api.nvim_set_current_buf(buf)
  fake.hold = true
  local held, dropped, before, said = fake.held, fake.dropped, #notes, #messages
  vim.api.nvim_win_set_cursor(0, { find_line(buf, "fn main"), 3 })
  vim.cmd("StrataAsk explain is this ever answered?")
  local asked = wait(WAIT_MS, function()
    if fake.held == held then
      return false
    end
    for _, p in ipairs(strata.progress()) do
      if p.token:match("^strata%-agent") then
        return true
      end
    end
    return false
  end)
  check("a run waits on the model, with progress", asked)
  check("status() shows the run", strata.status():match("^Strata: .") ~= nil, strata.status())
  local ran = #ended
  vim.cmd("StrataCancel")
  local cancelled = wait(WAIT_MS, function()
    return #told(said, "Strata: Explain this code — cancelled") == 1
  end)
  check(":StrataCancel stops the run", cancelled, vim.inspect(messages))
  local result = run_ended(ran, "explain")
  check(
    "its result says cancelled",
    type(result) == "table" and result.cancelled == true,
    vim.inspect(result)
  )
  check(
    "the plugin says nothing more",
    #vim.list_slice(notes, before + 1) == 0,
    table.concat(vim.list_slice(notes, before + 1), "\n")
  )
  check(
    "the run's progress ended",
    wait(WAIT_MS, function()
      return strata.status():find("Explain", 1, true) == nil
    end),
    strata.status()
  )
  check(
    "the model's request is dropped",
    wait(WAIT_MS, function()
      return fake.dropped > dropped
    end)
  )
  fake.hold = false
end

local function test_health()
  vim.cmd("silent checkhealth strata")
  local text = buffer_text(vim.api.nvim_get_current_buf())
  check(
    ":checkhealth strata finds the binary",
    text:find("--version`: strata", 1, true) ~= nil,
    text
  )
  check(":checkhealth strata sees the client", text:find("attached to", 1, true) ~= nil, text)
  check(":checkhealth strata has no errors", text:find("ERROR", 1, true) == nil, text)
  vim.cmd("tabclose")
end

---------------------------------------------------------------------------------------------
-- Run

local function stop()
  for _, c in ipairs(strata.get_clients(nil)) do
    local id = c.id
    vim.lsp.stop_client(id)
    if not wait(5000, function()
      return vim.lsp.get_client_by_id(id) == nil
    end) then
      vim.lsp.stop_client(id, true)
    end
  end
  if not listener:is_closing() then
    listener:close()
  end
end

local function show_log()
  local lines = log_lines()
  out("--- the end of " .. log_path)
  out(table.concat(vim.list_slice(lines, math.max(#lines - 59, 1)), "\n"))
end

local function main()
  if not check("STRATA_BIN is an executable", bin ~= nil and vim.fn.executable(bin) == 1, bin) then
    return
  end
  test_lsp_config()
  test_attach()
  test_status()
  test_document_symbols()
  test_workspace_symbols()
  test_code_actions()
  test_code_action_menu()
  test_document_agent()
  test_review()
  test_completion()
  test_context_command()
  test_stats_command()
  test_chat_command()
  test_ask_explain()
  test_ask_document_visual()
  test_cancel()
  test_health()
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  check("the test ran to the end", false, err)
end
local deprecated = vim.tbl_filter(function(note)
  return note:lower():find("deprecated", 1, true) ~= nil
end, notes)
vim.list_extend(deprecated, deprecations)
check("no deprecation warnings", #deprecated == 0, table.concat(deprecated, "\n"))
local warnings = vim.tbl_filter(function(message)
  return message:find("config", 1, true) ~= nil
end, messages)
check(
  "the server took the settings without a warning",
  #warnings == 0,
  table.concat(warnings, "\n")
)
local stopped, stop_err = pcall(stop)
if not stopped then
  out("stopping: " .. tostring(stop_err))
end
-- The editor's own log, the server stopped: nothing this run logged is an error.
local log_errors = vim.tbl_filter(function(line)
  return line:find("[ERROR]", 1, true) == 1
end, log_lines())
check(
  "Neovim's LSP log has no error from this run",
  #log_errors == 0,
  table.concat(log_errors, "\n")
)
-- Vim's errors (E123:) and the Lua errors of callbacks, which have no number.
local message_errors = {}
for line in vim.fn.execute("messages"):gmatch("[^\n]+") do
  if line:match("E%d+:") or line:match("^Error") or line:match("stack traceback") then
    table.insert(message_errors, line)
  end
end
check(":messages has no error", #message_errors == 0, table.concat(message_errors, "\n"))
vim.notify = default_notify
vim.fn.delete(tmp, "rf")
if failed > 0 then
  pcall(show_log)
end
finished = true
out(string.format("%d passed, %d failed", passed, failed))
if failed > 0 then
  vim.cmd("cquit 1")
else
  vim.cmd("qall!")
end
