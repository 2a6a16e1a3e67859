-- Strata for Neovim: starts `strata serve --stdio` for source buffers and adds commands for
-- Strata's own requests. Works on Neovim 0.7 and newer; on 0.11+ it goes through
-- vim.lsp.config/vim.lsp.enable with the configuration in lsp/strata.lua.

local M = {}

local NAME = "strata"
local RUN_AGENT = "strata.runAgent"
local NEW_CHAT = "strata.newChat"
local AGENTS = { "explain", "document", "fix", "tests", "refactor", "review", "summarize" }

M.defaults = {
  cmd = { "strata", "serve", "--stdio" },
  filetypes = { "rust", "typescript", "typescriptreact", "javascript", "javascriptreact" },
  root_markers = { ".git", "Cargo.toml", "package.json" },
}

local has = function(feature)
  return vim.fn.has(feature) == 1
end

-- What the server last said about itself and the work it reports, for statuslines.
local state = {
  status = nil, -- the latest strata/status
  progress = {}, -- token -> { title, message, percentage }, while running
  last_run = nil, -- the latest strata/runEnded: { client_id, token, result }
  options = {},
}

local function notify(message, level)
  vim.notify(message, level or vim.log.levels.INFO)
end

-- JSON null arrives as vim.NIL in some places; treat it as absent.
local function value(x)
  if x == vim.NIL then
    return nil
  end
  return x
end

local function empty_object()
  return vim.empty_dict()
end

---------------------------------------------------------------------------------------------
-- Clients

-- The Strata clients attached to a buffer (or all of them when bufnr is nil).
local function get_clients(bufnr)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = bufnr, name = NAME })
  end
  if has("nvim-0.8") then
    return vim.lsp.get_active_clients({ bufnr = bufnr, name = NAME })
  end
  local found = {}
  local all = bufnr and vim.lsp.buf_get_clients(bufnr) or vim.lsp.get_active_clients()
  for _, client in pairs(all) do
    if client.name == NAME then
      table.insert(found, client)
    end
  end
  return found
end
M.get_clients = get_clients

-- The client for the current buffer, else any running Strata client.
local function current_client()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = get_clients(bufnr)[1]
  if client then
    return client, bufnr
  end
  return get_clients(nil)[1], nil
end

local function request(client, method, params, handler, bufnr)
  if has("nvim-0.11") then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end
M._request = request

local function offset_encoding(client)
  return client.offset_encoding or "utf-16"
end

---------------------------------------------------------------------------------------------
-- Status and progress

local function changed()
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "StrataStatus", modeline = false })
  pcall(vim.cmd, "redrawstatus!") -- every window: a split shows the same status
end

local function on_status(_, result)
  state.status = value(result)
  changed()
end

local function on_progress(err, result, ctx, config)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if client and client.name == NAME and type(result) == "table" then
    local token = tostring(result.token)
    local key = ctx.client_id .. ":" .. token
    local v = type(result.value) == "table" and result.value or {}
    if v.kind == "begin" then
      state.progress[key] = {
        client_id = ctx.client_id,
        token = token,
        title = v.title,
        message = value(v.message),
        percentage = value(v.percentage),
      }
    elseif v.kind == "report" and state.progress[key] then
      state.progress[key].message = value(v.message)
      state.progress[key].percentage = value(v.percentage)
    elseif v.kind == "end" then
      state.progress[key] = nil
    end
    changed()
  end
  -- Neovim's own handler keeps vim.lsp's progress messages (LspProgressUpdate, LspProgress).
  local default = vim.lsp.handlers["$/progress"]
  if default and default ~= on_progress then
    return default(err, result, ctx, config)
  end
end

local function open_path(path)
  vim.cmd("split " .. vim.fn.fnameescape(path))
end

-- strata/runEnded: a run that strata.runAgent or strata.runWorkflow started has ended. The server
-- has said how with window/showMessage; all that is left here is to open an answer the server
-- could not show (Neovim before window/showDocument), unless open_answers is false.
local function on_run_ended(_, params, ctx)
  if type(params) ~= "table" then
    return
  end
  local result = value(params.result)
  state.last_run = { client_id = ctx and ctx.client_id, token = params.token, result = result }
  if type(result) == "table" then
    local path = value(result.path)
    if path and result.shown == false and state.options.open_answers ~= false then
      open_path(path)
    end
  end
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "StrataRunEnded", modeline = false })
end

--- Handlers Strata needs; lsp/strata.lua and setup() both use them.
function M.handlers()
  return {
    ["strata/status"] = on_status,
    ["$/progress"] = on_progress,
    ["strata/runEnded"] = on_run_ended,
  }
end

--- The latest run that ended, as `strata/runEnded` said (nil before the first one):
--- { client_id, token, result } with result as in docs/lsp-extensions.md. The User autocmd
--- StrataRunEnded fires after each.
function M.last_run()
  return state.last_run
end

--- The latest `strata/status` as the server sent it (nil before the first one):
--- { indexing = { done, total } | nil, inFlight, rateLimited, offline }.
function M.status_table()
  return state.status
end

--- The Strata work in progress: a list of { client_id, token, title, message, percentage }.
function M.progress()
  local list = {}
  for _, p in pairs(state.progress) do
    table.insert(list, p)
  end
  table.sort(list, function(a, b)
    return (a.title or "") < (b.title or "")
  end)
  return list
end

--- A short text for a statusline: "" without a Strata server, else "Strata" and what it is
--- doing ("Strata: indexing 120/800", "Strata: Document — streaming, 12 pieces", "offline"…).
function M.status()
  local s = state.status
  if not s then
    return ""
  end
  local parts = {}
  local indexing = value(s.indexing)
  if type(indexing) == "table" then
    table.insert(parts, string.format("indexing %d/%d", indexing.done or 0, indexing.total or 0))
  end
  for _, p in ipairs(M.progress()) do
    local title = (p.title or ""):gsub("^Strata: ", "")
    if p.message and p.message ~= "" then
      title = title .. " — " .. p.message
    end
    -- Indexing is already in strata/status.
    if title ~= "" and p.token ~= "strata/index" then
      table.insert(parts, title)
    end
  end
  if #parts == 0 and (s.inFlight or 0) > 0 then
    table.insert(parts, string.format("%d running", s.inFlight))
  end
  if s.rateLimited then
    table.insert(parts, "rate limited")
  end
  if s.offline then
    table.insert(parts, "offline")
  end
  if #parts == 0 then
    return "Strata"
  end
  return "Strata: " .. table.concat(parts, ", ")
end

---------------------------------------------------------------------------------------------
-- Starting the server (0.7–0.10)

-- The nearest directory above `dir` holding one of `markers`; markers earlier in the list win,
-- and markers grouped in a nested list count as equals (as vim.fs.root does on 0.11).
local function find_root(dir, markers)
  for _, group in ipairs(markers) do
    group = type(group) == "table" and group or { group }
    local d = dir
    while d and d ~= "" do
      for _, marker in ipairs(group) do
        if (vim.uv or vim.loop).fs_stat(d .. "/" .. marker) then
          return d
        end
      end
      local parent = vim.fn.fnamemodify(d, ":h")
      if parent == d then
        break
      end
      d = parent
    end
  end
  return nil
end
M._find_root = find_root

local function root_dir(bufnr, opts)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local dir = vim.fn.fnamemodify(name, ":p:h")
  return find_root(dir, opts.root_markers) or dir
end

---------------------------------------------------------------------------------------------
-- Completion

local SUGGESTION = "Strata: model suggestion"

-- Neovim's built-in completion (the omnifunc, vim.lsp.completion) does not always insert the
-- whole of a suggestion: 0.11+ stops at its first space or line break, and 0.7–0.10 put line
-- breaks in as NUL characters. After such a completion, put in the suggestion as the server
-- meant it. Completion plugins that apply the textEdit themselves are left alone.
function M._complete_done()
  local completed = vim.v.completed_item
  if type(completed) ~= "table" or type(completed.word) ~= "string" or completed.word == "" then
    return
  end
  local data = type(completed.user_data) == "table" and completed.user_data or {}
  local item = type(data.nvim) == "table"
    and type(data.nvim.lsp) == "table"
    and data.nvim.lsp.completion_item
  if type(item) ~= "table" or item.detail ~= SUGGESTION or type(item.textEdit) ~= "table" then
    return
  end
  local new_text = item.textEdit.newText
  if
    type(new_text) ~= "string" or new_text == completed.word and not new_text:find("\n", 1, true)
  then
    return
  end
  if new_text:sub(1, #completed.word) ~= completed.word then
    return
  end
  -- What the completion put in before the cursor, on this line.
  local inserted = completed.word:gsub("\n", "\0")
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1], cursor[2]
  local line = vim.api.nvim_get_current_line()
  if col < #inserted or line:sub(col - #inserted + 1, col) ~= inserted then
    return
  end
  local lines = vim.split(new_text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(0, row - 1, col - #inserted, row - 1, col, lines)
  if #lines == 1 then
    vim.api.nvim_win_set_cursor(0, { row, col - #inserted + #lines[1] })
  else
    vim.api.nvim_win_set_cursor(0, { row + #lines - 1, #lines[#lines] })
  end
end

local function offers_inline(client)
  return value(client.server_capabilities and client.server_capabilities.inlineCompletionProvider)
    ~= nil
end

local function offers_items(client)
  return value(client.server_capabilities and client.server_capabilities.completionProvider)
    ~= nil
end

-- Neovim 0.12+ shows inline completion (ghost text) once it is enabled for a buffer; it is off
-- by default. When the server serves inline suggestions (it does to clients that announce
-- inline completion, unless `[completion] mode` says otherwise), turn it on for the buffer,
-- unless the configuration says `inline_completion = false`.
local function enable_inline_completion(client, bufnr)
  local inline = vim.lsp.inline_completion
  if not (inline and inline.enable) or not offers_inline(client) then
    return
  end
  if type(client.config) == "table" and client.config.inline_completion == false then
    return
  end
  -- The buffer marker: Neovim creates the buffer's inline completion once on_attach and the
  -- LspAttach autocmds are done.
  inline.enable(true, { bufnr = bufnr })
end

-- The buffers set up for a client: "client_id:bufnr" -> true, until the client detaches.
local set_up = {}

--- What Strata sets up in a buffer a Strata client attaches to: the whole-suggestion fix for
--- completion items and, on 0.12+, inline completion. Runs once per client and buffer, however
--- often it is called: the LspAttach autocmd (create_autocmds) and setup()'s on_attach both
--- call it.
function M.on_attach(client, bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  local key = (client and client.id or 0) .. ":" .. bufnr
  if set_up[key] then
    return
  end
  set_up[key] = true
  local group = vim.api.nvim_create_augroup("strata_buffer", { clear = false })
  vim.api.nvim_clear_autocmds({ group = group, buffer = bufnr })
  vim.api.nvim_create_autocmd("CompleteDone", {
    group = group,
    buffer = bufnr,
    callback = M._complete_done,
    desc = "Strata: insert the whole model suggestion",
  })
  if client then
    enable_inline_completion(client, bufnr)
  end
end

local function on_attach_with(opts)
  return function(client, bufnr)
    M.on_attach(client, bufnr)
    -- Only for completion items: a server serving inline suggestions has none.
    if opts.omnifunc ~= false and offers_items(client) and vim.bo[bufnr].omnifunc == "" then
      vim.bo[bufnr].omnifunc = "v:lua.vim.lsp.omnifunc"
    end
    if opts.on_attach then
      opts.on_attach(client, bufnr)
    end
  end
end

local function on_exit_with(opts)
  return function(code, signal, client_id)
    -- May be called from the process's exit callback, where most of the API is off limits.
    vim.schedule(function()
      for key, p in pairs(state.progress) do
        if p.client_id == client_id then
          state.progress[key] = nil
        end
      end
      local others = vim.tbl_filter(function(c)
        return c.id ~= client_id
      end, get_clients(nil))
      if #others == 0 then
        state.status = nil
      end
      changed()
    end)
    if opts.on_exit then
      opts.on_exit(code, signal, client_id)
    end
  end
end

local function client_config(opts, root)
  local handlers = vim.tbl_extend("force", M.handlers(), opts.handlers or {})
  return {
    name = NAME,
    cmd = opts.cmd,
    cmd_env = opts.cmd_env,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    capabilities = opts.capabilities or vim.lsp.protocol.make_client_capabilities(),
    init_options = opts.init_options or empty_object(),
    settings = opts.settings or { strata = { config = empty_object() } },
    handlers = handlers,
    on_attach = on_attach_with(opts),
    on_exit = on_exit_with(opts),
    flags = opts.flags,
  }
end

local clients_by_root = {} -- 0.7: root -> client id

local function attach(bufnr, opts)
  if not vim.api.nvim_buf_is_valid(bufnr) then
    return
  end
  if vim.bo[bufnr].buftype ~= "" then
    return
  end
  if vim.api.nvim_buf_get_name(bufnr) == "" then
    return
  end
  if vim.fn.executable(opts.cmd[1]) ~= 1 then
    if not state.warned then
      state.warned = true
      notify(
        "Strata: `" .. opts.cmd[1] .. "` is not executable; see :checkhealth strata",
        vim.log.levels.WARN
      )
    end
    return
  end
  local root = root_dir(bufnr, opts)
  if vim.lsp.start then -- 0.8+: reuses the client with the same name and root
    vim.lsp.start(client_config(opts, root), { bufnr = bufnr })
    return
  end
  local id = clients_by_root[root]
  local client = id and vim.lsp.get_client_by_id(id)
  if not client or client.is_stopped() then
    id = vim.lsp.start_client(client_config(opts, root))
    clients_by_root[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end
M._attach = attach

---------------------------------------------------------------------------------------------
-- Commands

-- Opens a scratch buffer in a split showing `lines`.
local scratch_count = 0
local function scratch(name, filetype, text)
  vim.cmd("botright new")
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].swapfile = false
  scratch_count = scratch_count + 1
  pcall(vim.api.nvim_buf_set_name, buf, string.format("strata://%s/%d", name, scratch_count))
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(text, "\n", { plain = true }))
  vim.bo[buf].filetype = filetype
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  return buf
end
M._scratch = scratch

-- JSON with sorted keys and two-space indents (Neovim 0.7 has no pretty printer).
local function pretty(x, indent)
  indent = indent or ""
  local inner = indent .. "  "
  if x == nil or x == vim.NIL then
    return "null"
  end
  local t = type(x)
  if t == "string" then
    return vim.fn.json_encode(x)
  elseif t == "number" then
    if x == math.floor(x) and math.abs(x) < 2 ^ 53 then
      return string.format("%d", x)
    end
    return tostring(x)
  elseif t == "boolean" then
    return tostring(x)
  elseif t ~= "table" then
    return vim.fn.json_encode(tostring(x))
  end
  if next(x) == nil then
    return getmetatable(x) == getmetatable(vim.empty_dict()) and "{}" or "[]"
  end
  local out = {}
  if (vim.islist or vim.tbl_islist)(x) then
    for _, v in ipairs(x) do
      table.insert(out, inner .. pretty(v, inner))
    end
    return "[\n" .. table.concat(out, ",\n") .. "\n" .. indent .. "]"
  end
  local keys = vim.tbl_keys(x)
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  for _, k in ipairs(keys) do
    table.insert(out, inner .. vim.fn.json_encode(tostring(k)) .. ": " .. pretty(x[k], inner))
  end
  return "{\n" .. table.concat(out, ",\n") .. "\n" .. indent .. "}"
end
M._pretty = pretty

local function need_client()
  local client, bufnr = current_client()
  if not client then
    notify("Strata: no Strata server is running (see :checkhealth strata)", vim.log.levels.WARN)
  end
  return client, bufnr
end

local function need_attached()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = get_clients(bufnr)[1]
  if not client then
    notify("Strata: this buffer has no Strata server attached", vim.log.levels.WARN)
  end
  return client, bufnr
end

-- The range a command was given: a charwise visual selection as selected, line ranges as whole
-- lines; nil without a range.
local function command_range(opts, client, bufnr)
  if not opts or (opts.range or 0) == 0 then
    return nil
  end
  local vstart = vim.api.nvim_buf_get_mark(bufnr, "<")
  local vend = vim.api.nvim_buf_get_mark(bufnr, ">")
  if vim.fn.visualmode() == "v" and vstart[1] == opts.line1 and vend[1] == opts.line2 then
    return vim.lsp.util.make_given_range_params(vstart, vend, bufnr, offset_encoding(client)).range
  end
  return {
    start = { line = opts.line1 - 1, character = 0 },
    ["end"] = { line = opts.line2, character = 0 },
  }
end

local function cursor_position(client)
  return vim.lsp.util.make_position_params(0, offset_encoding(client)).position
end

--- :StrataContext — the context pack for the cursor (or range), rendered, in a scratch buffer.
function M.context(opts)
  local client, bufnr = need_attached()
  if not client then
    return
  end
  local params = { textDocument = { uri = vim.uri_from_bufnr(bufnr) } }
  local range = command_range(opts, client, bufnr)
  if range then
    params.range = range
  else
    params.position = cursor_position(client)
  end
  if opts and opts.args and opts.args ~= "" then
    params.query = opts.args
  end
  request(client, "strata/context", params, function(err, result)
    if err then
      notify("Strata: strata/context: " .. tostring(err.message), vim.log.levels.ERROR)
      return
    end
    local text = value(result and result.rendered) or ""
    local notes = value(result and result.notes) or {}
    local header = {}
    for _, note in ipairs(notes) do
      table.insert(header, "> " .. note)
    end
    if #header > 0 then
      text = table.concat(header, "\n") .. "\n\n" .. text
    end
    scratch("context", "markdown", text)
  end, bufnr)
end

--- :StrataStats — what the server holds, as JSON in a scratch buffer.
function M.stats()
  local client, bufnr = need_client()
  if not client then
    return
  end
  request(client, "strata/stats", nil, function(err, result)
    if err then
      notify("Strata: strata/stats: " .. tostring(err.message), vim.log.levels.ERROR)
      return
    end
    scratch("stats", "json", pretty(result))
  end, bufnr)
end

--- :StrataAsk {agent} [question] — runs an agent on the cursor's code or the given range. The
--- server answers once the run has started (or with why it cannot start); how it ends comes
--- with strata/runEnded and the server's own message.
function M.ask(opts)
  local client, bufnr = need_attached()
  if not client then
    return
  end
  local agent = opts.fargs and opts.fargs[1]
  if not agent or agent == "" then
    notify("Strata: usage: :StrataAsk {agent} [question]", vim.log.levels.WARN)
    return
  end
  local question = vim.trim((opts.args or ""):gsub("^%s*%S+", "", 1))
  local range = command_range(opts, client, bufnr)
  if not range then
    local position = cursor_position(client)
    range = { start = position, ["end"] = position } -- the innermost chunk at the cursor
  end
  local argument = {
    agent = agent,
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = range,
  }
  if question ~= "" then
    argument.query = question
  end
  request(
    client,
    "workspace/executeCommand",
    { command = RUN_AGENT, arguments = { argument } },
    function(err)
      if err then
        notify("Strata: " .. agent .. ": " .. tostring(err.message), vim.log.levels.ERROR)
      end
    end,
    bufnr
  )
end

local function notify_server(client, method, params)
  if has("nvim-0.11") then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

--- :StrataCancel — stops the agent and workflow runs in progress
--- (window/workDoneProgress/cancel).
function M.cancel()
  local count = 0
  for _, p in pairs(state.progress) do
    local client = vim.lsp.get_client_by_id(p.client_id)
    if client and (p.token:match("^strata%-agent") or p.token:match("^strata%-workflow")) then
      notify_server(client, "window/workDoneProgress/cancel", { token = p.token })
      count = count + 1
    end
  end
  if count == 0 then
    notify("Strata: no agent is running")
  end
end

local function offers(client, command)
  local provider =
    value(client.server_capabilities and client.server_capabilities.executeCommandProvider)
  for _, c in ipairs(type(provider) == "table" and value(provider.commands) or {}) do
    if c == command then
      return true
    end
  end
  return false
end

--- :StrataChat — opens a chat (when the server offers strata.newChat).
function M.chat(opts)
  local client, bufnr = need_client()
  if not client then
    return
  end
  if not offers(client, NEW_CHAT) then
    notify(
      "Strata: this version of the server has no chat yet (it does not offer " .. NEW_CHAT .. ")",
      vim.log.levels.WARN
    )
    return
  end
  local argument = {}
  if bufnr then
    argument.textDocument = { uri = vim.uri_from_bufnr(bufnr) }
    argument.range = command_range(opts, client, bufnr)
  end
  if opts and opts.args and opts.args ~= "" then
    argument.query = opts.args
  end
  request(
    client,
    "workspace/executeCommand",
    { command = NEW_CHAT, arguments = { argument } },
    function(err, result)
      if err then
        notify("Strata: chat: " .. tostring(err.message), vim.log.levels.ERROR)
        return
      end
      result = value(result)
      if type(result) == "table" and not result.shown then
        local path = value(result.path) or (value(result.uri) and vim.uri_to_fname(result.uri))
        if path then
          open_path(path)
        end
      end
    end,
    bufnr
  )
end

local function complete_agents(lead)
  local names = vim.deepcopy(AGENTS)
  local client = current_client()
  if client and client.config and type(client.config.settings) == "table" then
    local config = client.config.settings.strata and client.config.settings.strata.config
    if type(config) == "table" and type(config.agents) == "table" then
      for name in pairs(config.agents) do
        if not vim.tbl_contains(names, name) then
          table.insert(names, name)
        end
      end
    end
  end
  return vim.tbl_filter(function(name)
    return name:sub(1, #lead) == lead
  end, names)
end

--- Attaches a chat file (`*.strata.md`, markdown) to the running Strata client, so that
--- vim.lsp.buf.code_action() offers "Strata: send" there and the chat has the workspace's
--- context. Nothing when no Strata client runs yet.
function M.attach_chat(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or #get_clients(bufnr) > 0 then
    return
  end
  local client = get_clients(nil)[1]
  if client then
    vim.lsp.buf_attach_client(bufnr, client.id)
  end
end

--- Sets up each buffer a client named "strata" attaches to (M.on_attach), from an LspAttach
--- autocmd, so that it happens whatever `on_attach` the configuration has: a user's
--- vim.lsp.config("strata", { on_attach = ... }) takes nothing away. Neovim 0.8+ (0.7 has no
--- LspAttach; setup() calls M.on_attach there). Calling it again changes nothing.
function M.create_autocmds()
  if not has("nvim-0.8") then
    return
  end
  local group = vim.api.nvim_create_augroup("strata_attach", { clear = true })
  vim.api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(args)
      local client = args.data and vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == NAME then
        M.on_attach(client, args.buf)
      end
    end,
    desc = "Strata: set up the buffers Strata attaches to",
  })
  vim.api.nvim_create_autocmd("LspDetach", {
    group = group,
    callback = function(args)
      if args.data and args.data.client_id then
        set_up[args.data.client_id .. ":" .. args.buf] = nil
      end
    end,
    desc = "Strata: forget the buffers a client left",
  })
end

--- Creates :StrataContext, :StrataStats, :StrataAsk, :StrataChat and :StrataCancel, and the
--- autocmds that attach chat files and set up Strata's buffers (plugin/strata.lua and setup()
--- call it).
function M.create_commands()
  M.create_autocmds()
  vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile", "BufEnter" }, {
    group = vim.api.nvim_create_augroup("strata_chat", { clear = true }),
    pattern = "*.strata.md",
    callback = function(args)
      M.attach_chat(args.buf)
    end,
    desc = "Strata: attach chat files to the running server",
  })
  local command = vim.api.nvim_create_user_command
  command(
    "StrataContext",
    M.context,
    { nargs = "*", range = true, desc = "Strata: show the context pack at the cursor" }
  )
  command("StrataStats", M.stats, { nargs = 0, desc = "Strata: show what the server holds" })
  command("StrataAsk", M.ask, {
    nargs = "+",
    range = true,
    desc = "Strata: run an agent on the code at the cursor or the range",
    complete = function(lead, line)
      -- Only the first argument is an agent name.
      if line:match("StrataAsk%s+%S+%s") then
        return {}
      end
      return complete_agents(lead)
    end,
  })
  command("StrataChat", M.chat, { nargs = "*", range = true, desc = "Strata: open a chat" })
  command("StrataCancel", M.cancel, { nargs = 0, desc = "Strata: stop the agents running" })
end

---------------------------------------------------------------------------------------------
-- setup

--- The options setup() was given, defaults filled in ({} before setup()).
function M.options()
  return state.options
end

--- Starts Strata for the configured filetypes and creates the :Strata* commands.
--- opts: cmd, cmd_env, filetypes, root_markers, init_options, settings, capabilities,
--- handlers, on_attach, on_exit, flags, omnifunc (default true: set 'omnifunc' when empty and
--- the server serves completion items), inline_completion (default true: on 0.12+, turn on
--- Neovim's inline completion in Strata's buffers when the server serves it), open_answers
--- (default true), autostart (default true).
function M.setup(opts)
  opts = vim.tbl_extend("force", {}, M.defaults, opts or {})
  state.options = opts
  M.create_commands()
  if opts.autostart == false then
    return
  end

  if has("nvim-0.11") and vim.lsp.config and vim.lsp.enable then
    local config = {
      cmd = opts.cmd,
      filetypes = opts.filetypes,
      root_markers = opts.root_markers,
      handlers = vim.tbl_extend("force", M.handlers(), opts.handlers or {}),
      on_attach = on_attach_with(opts),
      inline_completion = opts.inline_completion ~= false,
    }
    for _, key in ipairs({
      "cmd_env",
      "init_options",
      "settings",
      "capabilities",
      "flags",
      "on_exit",
    }) do
      if opts[key] ~= nil then
        config[key] = opts[key]
      end
    end
    vim.lsp.config(NAME, config)
    vim.lsp.enable(NAME)
    return
  end

  local group = vim.api.nvim_create_augroup("strata", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = opts.filetypes,
    callback = function(args)
      attach(args.buf, opts)
    end,
    desc = "Strata: attach the language server",
  })
  -- Buffers already open when setup() runs.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) then
      local ft = vim.bo[bufnr].filetype
      if vim.tbl_contains(opts.filetypes, ft) then
        attach(bufnr, opts)
      end
    end
  end
end

return M
