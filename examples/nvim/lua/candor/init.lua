-- Candor for Neovim: sends editor events to the local Candor daemon's ingest
-- socket (newline-delimited JSON, protocol version 1). The daemon decides
-- what is recorded: consent, pauses, watched workspaces, the deny list and
-- .gitignore all apply there. This plugin never blocks editing and never
-- prints on its own; `:CandorStatus` shows what happened.
--
-- Works on Neovim 0.7 and later (vim.loop, falling back from vim.uv).

local M = {}

local uv = vim.uv or vim.loop
local api = vim.api

local PROTOCOL = 1
local EDITOR = "nvim"
-- The daemon refuses lines over 64 KiB. A chunk of text is at most 8 KiB,
-- which stays under it even if every byte were escaped as \u00XX.
local CHUNK = 8192
local MAX_REGIONS = 200
-- Replies that say a file may never be recorded (until the daemon changes).
local HIDING = { outside = true, denied = true, ignored = true }
-- Refusals for which a kind is not sent for a while (ms).
local MUTE_MS = { ["not-granted"] = 30000, paused = 5000 }

local defaults = {
  -- The ingest socket; nil means $CANDOR_INGEST_SOCKET, else
  -- $CANDOR_DATA_DIR/ingest.sock, else $XDG_DATA_HOME/candor/ingest.sock
  -- (~/.local/share/candor/ingest.sock).
  socket = nil,
  enabled = true,
  events = {
    focus = true,
    edit = true,
    cursor = true,
    selection = true,
    command = true,
    diagnostics = true,
  },
  -- At most one cursor (and one selection) event per interval.
  cursor_interval_ms = 250,
  selection_interval_ms = 250,
  -- Diagnostics are sent once they have been still for this long.
  diagnostics_delay_ms = 300,
  -- Buffers larger than this are not followed for edits.
  max_file_bytes = 2 * 1024 * 1024,
  -- Buffers up to this size are compared with the text sent after every
  -- change (larger ones when written and when left).
  verify_bytes = 64 * 1024,
  -- Messages waiting for a connection, at most.
  max_queue = 5000,
  -- Messages older than this are not sent (the daemon wants `ts` within
  -- a minute of its clock).
  max_age_ms = 50000,
  -- How long Neovim may wait, when quitting, for the last events to be sent.
  leave_timeout_ms = 1000,
}

local cfg = vim.deepcopy(defaults)
local started = false

---------------------------------------------------------------------------
-- Small helpers
---------------------------------------------------------------------------

local function mono()
  return uv.hrtime() / 1e6
end

local function wall_ms()
  if uv.gettimeofday then
    local s, us = uv.gettimeofday()
    if type(s) == "number" and type(us) == "number" then
      return s * 1000 + math.floor(us / 1000)
    end
  end
  return os.time() * 1000
end

local stats = {
  sent = 0, -- messages handed to the connection
  ok = 0, -- recorded
  not_recorded = 0, -- valid, but consent, a pause, the rate limit, or the file kept them out
  errors = 0, -- refused as invalid (a bug here or a protocol mismatch)
  dropped = 0, -- never delivered (no daemon, queue full, connection lost)
  resyncs = 0, -- a buffer's whole text sent again after lost edits
  desyncs = 0, -- a buffer's changes did not add up (should never happen)
  connects = 0,
  reasons = {}, -- not_recorded reasons -> count
}
local last_error -- the last error reply, or plugin error
local last_refusal -- the last not_recorded reply
local last_conn_error -- why the last connection attempt failed or ended

local function note_error(msg)
  last_error = msg
end

-- Runs f, never letting an error reach the editor.
local function guard(f, ...)
  local ok, err = pcall(f, ...)
  if not ok then
    note_error("plugin error: " .. tostring(err))
  end
  return ok, err
end

local function fifo()
  return { first = 1, last = 0 }
end
local function fpush(q, v)
  q.last = q.last + 1
  q[q.last] = v
end
local function fpop(q)
  if q.first > q.last then
    return nil
  end
  local v = q[q.first]
  q[q.first] = nil
  q.first = q.first + 1
  return v
end
local function flen(q)
  return q.last - q.first + 1
end

-- JSON, for the few shapes sent here: strings, non-negative integers, booleans.
-- Only ASCII control characters are escaped (named by byte, whatever the
-- locale thinks %c means), the rest of the UTF-8 goes as it is.
local ESCAPES = {
  ['"'] = '\\"',
  ["\\"] = "\\\\",
  ["\n"] = "\\n",
  ["\r"] = "\\r",
  ["\t"] = "\\t",
  ["\b"] = "\\b",
  ["\f"] = "\\f",
}
local function jstr(s)
  return '"'
    .. (s:gsub('[%z\1-\31\127"\\]', function(c)
      return ESCAPES[c] or string.format("\\u%04x", c:byte())
    end))
    .. '"'
end

local function jval(v)
  local t = type(v)
  if t == "string" then
    return jstr(v)
  elseif t == "number" then
    return string.format("%.0f", v)
  elseif t == "boolean" then
    return v and "true" or "false"
  end
  error("cannot encode " .. t)
end

-- Strict UTF-8 (what the daemon's JSON parser accepts).
local function valid_utf8(s)
  local i, n = 1, #s
  while true do
    i = s:find("[\128-\255]", i)
    if not i then
      return true
    end
    local c = s:byte(i)
    local need, lo, hi = 0, 0x80, 0xBF
    if c >= 0xC2 and c <= 0xDF then
      need = 1
    elseif c == 0xE0 then
      need, lo = 2, 0xA0
    elseif (c >= 0xE1 and c <= 0xEC) or c == 0xEE or c == 0xEF then
      need = 2
    elseif c == 0xED then
      need, hi = 2, 0x9F
    elseif c == 0xF0 then
      need, lo = 3, 0x90
    elseif c >= 0xF1 and c <= 0xF3 then
      need = 3
    elseif c == 0xF4 then
      need, hi = 3, 0x8F
    else
      return false
    end
    if i + need > n then
      return false
    end
    local c2 = s:byte(i + 1)
    if c2 < lo or c2 > hi then
      return false
    end
    for k = 2, need do
      local ck = s:byte(i + k)
      if ck < 0x80 or ck > 0xBF then
        return false
      end
    end
    i = i + need + 1
  end
end

---------------------------------------------------------------------------
-- The connection
---------------------------------------------------------------------------

local conn = {
  pipe = nil,
  state = "idle", -- idle | connecting | connected
  queue = fifo(), -- { line, meta, at } waiting for the connection
  sent = fifo(), -- metas of lines written, waiting for their replies
  rbuf = "",
  backoff = 0,
  next_try = 0,
}

local hidden = {} -- file -> reason (outside, denied, ignored)
local muted = {} -- kind -> mono ms until which it is not sent

-- A message that will never be answered: its buffer lost an edit.
local function lost(meta)
  local st = meta and meta.st
  if st then
    st.inflight = st.inflight - 1
    st.lost = true
    if meta.resync then
      -- The whole text did not get through either: not again at once.
      st.retry_at = mono() + 2000
    end
  end
end

local flush_later -- defined with the buffers

-- A message of a buffer was answered or given up: if the buffer lost an
-- edit, it is sent whole once nothing of it is in flight.
local function resolved(meta)
  local st = meta and meta.st
  while st and st.dead do
    st = st.successor
  end
  if st and (st.lost or (st.prev and st.prev.lost)) then
    flush_later(st)
  end
end

local function close_pipe()
  local p = conn.pipe
  conn.pipe = nil
  if p then
    pcall(function()
      if not p:is_closing() then
        p:read_stop()
        p:close()
      end
    end)
  end
end

local function drop_queue()
  while true do
    local e = fpop(conn.queue)
    if not e then
      break
    end
    stats.dropped = stats.dropped + 1
    lost(e.meta)
    resolved(e.meta)
  end
end

local function disconnect(why)
  close_pipe()
  local was = conn.state
  conn.state = "idle"
  conn.rbuf = ""
  if why then
    last_conn_error = why
  end
  -- Written but unanswered: their fate is unknown, count them as lost.
  while true do
    local meta = fpop(conn.sent)
    if not meta then
      break
    end
    stats.dropped = stats.dropped + 1
    lost(meta)
    resolved(meta)
  end
  if was == "connected" then
    conn.backoff = 250
  else
    conn.backoff = math.min(math.max(conn.backoff * 2, 500), 30000)
  end
  conn.next_try = mono() + conn.backoff
  drop_queue()
end

local function on_reply(line)
  local meta = fpop(conn.sent)
  if line:find('"ok":true', 1, true) then
    stats.ok = stats.ok + 1
    if meta and meta.file then
      hidden[meta.file] = nil
    end
    if meta and meta.st then
      meta.st.inflight = meta.st.inflight - 1
      meta.st.acked = meta.st.acked + meta.delta
    end
    return
  end
  local ok, r = pcall(vim.json.decode, line)
  if not ok or type(r) ~= "table" then
    r = { error = line }
  end
  local what = meta and meta.kind or "message"
  local err = type(r.error) == "string" and r.error or line
  local reason = r.not_recorded
  if type(reason) == "string" then
    stats.not_recorded = stats.not_recorded + 1
    stats.reasons[reason] = (stats.reasons[reason] or 0) + 1
    last_refusal = what .. ": " .. err
    if meta and meta.file and HIDING[reason] then
      hidden[meta.file] = reason
    end
    if meta and MUTE_MS[reason] then
      muted[meta.kind] = mono() + MUTE_MS[reason]
    end
  else
    stats.errors = stats.errors + 1
    last_error = what .. ": " .. err
  end
  if meta then
    lost(meta)
    resolved(meta)
  end
end

local function on_read(pipe, err, data)
  if pipe ~= conn.pipe then
    return
  end
  if err or not data then
    disconnect(err or "the daemon closed the connection")
    return
  end
  conn.rbuf = conn.rbuf .. data
  while true do
    local nl = conn.rbuf:find("\n", 1, true)
    if not nl then
      break
    end
    local line = conn.rbuf:sub(1, nl - 1)
    conn.rbuf = conn.rbuf:sub(nl + 1)
    guard(on_reply, line)
  end
  if #conn.rbuf > 1024 * 1024 then
    conn.rbuf = ""
  end
end

-- Writes what is queued, if connected.
local function pump()
  if conn.state ~= "connected" then
    return
  end
  local pipe = conn.pipe
  local parts = {}
  local oldest = mono() - cfg.max_age_ms
  while true do
    local e = fpop(conn.queue)
    if not e then
      break
    end
    if e.at < oldest then
      stats.dropped = stats.dropped + 1
      lost(e.meta)
      resolved(e.meta)
    else
      parts[#parts + 1] = e.line
      fpush(conn.sent, e.meta)
      stats.sent = stats.sent + 1
    end
  end
  if #parts == 0 then
    return
  end
  local ok, res = pcall(pipe.write, pipe, table.concat(parts), function(werr)
    if werr and pipe == conn.pipe then
      disconnect(werr)
    end
  end)
  if not ok or res == nil then
    disconnect("write failed: " .. tostring(res))
  end
end

local function on_connect(pipe, err)
  if pipe ~= conn.pipe then
    return
  end
  if err then
    disconnect(err)
    return
  end
  conn.state = "connected"
  conn.backoff = 0
  stats.connects = stats.connects + 1
  -- Perhaps a new daemon, perhaps with other workspaces: ask again.
  hidden = {}
  muted = {}
  local ok = pcall(pipe.read_start, pipe, function(rerr, data)
    on_read(pipe, rerr, data)
  end)
  if not ok then
    disconnect("cannot read from the socket")
    return
  end
  pump()
end

local function connect()
  if conn.state ~= "idle" or mono() < conn.next_try then
    return
  end
  local pipe = uv.new_pipe(false)
  if not pipe then
    disconnect("cannot create a pipe")
    return
  end
  conn.pipe = pipe
  conn.state = "connecting"
  local ok, res, cerr = pcall(pipe.connect, pipe, cfg.socket, function(err)
    on_connect(pipe, err)
  end)
  if not ok or res == nil then
    disconnect(tostring(cerr or res))
  end
end

-- Sends one message: kind, then fields as a list of { key, value } pairs.
-- meta: { file = abs path, st = buffer state (edits), delta = size change }.
local function send(kind, fields, meta)
  meta = meta or {}
  meta.kind = kind
  if meta.st then
    meta.st.inflight = meta.st.inflight + 1
  end
  if not cfg.enabled then
    lost(meta)
    return
  end
  local until_ms = muted[kind]
  if until_ms and mono() < until_ms then
    lost(meta)
    return
  end
  if meta.file and hidden[meta.file] and kind ~= "editor.focus" then
    lost(meta)
    return
  end
  local parts = { '{"v":', tostring(PROTOCOL), ',"kind":', jstr(kind), ',"ts":', jval(wall_ms()) }
  for _, kv in ipairs(fields) do
    if kv[2] ~= nil then
      parts[#parts + 1] = "," .. jstr(kv[1]) .. ":" .. jval(kv[2])
    end
  end
  parts[#parts + 1] = ',"editor":"' .. EDITOR .. '"}\n'
  local line = table.concat(parts)
  if conn.state == "idle" then
    connect()
  end
  if conn.state == "idle" then
    -- Not connected and waiting before trying again: the daemon is down.
    stats.dropped = stats.dropped + 1
    lost(meta)
    return
  end
  if flen(conn.queue) >= cfg.max_queue then
    local old = fpop(conn.queue)
    stats.dropped = stats.dropped + 1
    lost(old.meta)
    resolved(old.meta)
  end
  fpush(conn.queue, { line = line, meta = meta, at = mono() })
  pump()
end

---------------------------------------------------------------------------
-- Files
---------------------------------------------------------------------------

local file_cache = {} -- buf -> { name, real }

-- The absolute real path of a normal file buffer, or nil.
local function real_file(buf)
  if not api.nvim_buf_is_valid(buf) or vim.bo[buf].buftype ~= "" then
    return nil
  end
  local name = api.nvim_buf_get_name(buf)
  if name == "" or name:find("^%a[%w+.-]*://") then
    return nil
  end
  local c = file_cache[buf]
  if c and c.name == name then
    return c.real
  end
  local abs = vim.fn.fnamemodify(name, ":p")
  local real = uv.fs_realpath(abs)
  if not real then
    local dir, base = vim.fn.fnamemodify(abs, ":h"), vim.fn.fnamemodify(abs, ":t")
    local rdir = uv.fs_realpath(dir)
    if rdir and base ~= "" then
      real = (rdir == "/" and "" or rdir) .. "/" .. base
    else
      real = abs
    end
  end
  local stat = uv.fs_stat(real)
  if (stat and stat.type == "directory") or real:sub(1, 1) ~= "/" then
    real = nil
  end
  file_cache[buf] = { name = name, real = real }
  return real
end

---------------------------------------------------------------------------
-- Edits
--
-- What is sent is the file as Neovim would write it: the BOM if 'bomb',
-- line breaks per 'fileformat', and the last line's break only if it would
-- be written ('eol', or 'fixeol' without 'binary'; an empty buffer writes
-- no line, only the BOM if any). So the edits, applied in order to the
-- file as it was read, give the file as it is saved.
--
-- Neovim reports changes with on_bytes in its own byte model, where every
-- line ends in one "\n" (the last one too; an empty buffer is "\n"). The
-- text is not read inside on_bytes: during :s, undo and others the buffer
-- does not yet (or already no longer) hold the text the event describes.
-- Instead, the changes of one burst are merged into regions (offsets,
-- rows, and how many old bytes and line breaks each replaced), and when
-- Neovim is back in its main loop each region's new text is read from the
-- buffer.
--
-- Neovim 0.7 gets a few byte counts wrong (text put at the end of a
-- 'noeol' buffer, into an empty buffer, after an unchanged :sort). So a
-- copy of the text as sent is kept: whenever the sizes do not add up, and
-- on every change to a small file, on every write and when leaving the
-- buffer, the buffer is compared with it, and a difference is sent as one
-- edit from the first differing byte to the last.
---------------------------------------------------------------------------

local bufs = {} -- buf -> state
local carry = {} -- file -> state of an unloaded buffer, for continuity

local function row_off(buf, r)
  if r <= 0 then
    return 0
  end
  local o = api.nvim_buf_get_offset(buf, r)
  if o >= 0 then
    return o
  end
  local n = 0
  for _, l in ipairs(api.nvim_buf_get_lines(buf, 0, r, false)) do
    n = n + #l + 1
  end
  return n
end

local function supported(buf)
  local fenc = vim.bo[buf].fileencoding
  return fenc == "" or fenc == "utf-8" or fenc == "utf8"
end

-- How the buffer would be written, and its sizes.
local function view_of(buf)
  local bo = vim.bo[buf]
  local lc = api.nvim_buf_line_count(buf)
  local last = api.nvim_buf_get_lines(buf, lc - 1, lc, false)[1] or ""
  local nsize = row_off(buf, lc - 1) + #last + 1
  -- With 'binary', 'fileformat' is ignored: lines end in "\n".
  local ff = bo.binary and "unix" or bo.fileformat
  local eol = ff == "dos" and "\r\n" or ff == "mac" and "\r" or "\n"
  local bom = (bo.bomb and not bo.binary) and "\239\187\191" or ""
  local empty = false
  if lc == 1 and last == "" then
    local ok, bytes = pcall(api.nvim_buf_call, buf, function()
      return vim.fn.wordcount().bytes
    end)
    empty = ok and bytes == 0
  end
  local tail = (not empty) and (bo.eol or (bo.fixeol and not bo.binary))
  local v = { lc = lc, nsize = nsize, eol = eol, bom = bom, empty = empty, tail = tail }
  v.size = function(with_tail)
    if empty then
      return #bom
    end
    return #bom + nsize + lc * (#eol - 1) - (with_tail and 0 or #eol)
  end
  v.ssize = v.size(tail)
  return v
end

local function full_text(buf, v, tail)
  if v.empty then
    return v.bom
  end
  if tail == nil then
    tail = v.tail
  end
  local s = v.bom .. table.concat(api.nvim_buf_get_lines(buf, 0, -1, false), v.eol)
  if tail then
    s = s .. v.eol
  end
  return s
end

-- Text between (ra, ca) and (rb, cb), line breaks as `eol`; rows past the
-- last line read as empty.
local function get_text(buf, ra, ca, rb, cb, lc, eol)
  local lines = api.nvim_buf_get_lines(buf, ra, math.min(rb + 1, lc), false)
  if rb == ra then
    return (lines[1] or ""):sub(ca + 1, cb)
  end
  local parts = { (lines[1] or ""):sub(ca + 1) }
  for i = 2, rb - ra do
    parts[#parts + 1] = lines[i] or ""
  end
  parts[#parts + 1] = (lines[rb - ra + 1] or ""):sub(1, cb)
  return table.concat(parts, eol)
end

local function continuation(s, i)
  local b = s:byte(i)
  return b ~= nil and b >= 0x80 and b < 0xC0
end

-- Sends one edit (in pieces small enough for the protocol) and applies it
-- to the copy of what was sent. False if it cannot be sent.
local function emit(st, off, del, text, line, col, eol, whole)
  local shadow = st.shadow
  if off < 0 or del < 0 or off + del > #shadow then
    return false
  end
  if not valid_utf8(text) then
    st.broken = true
    note_error("editor.edit: the buffer holds text that is not UTF-8; its edits are not sent")
    return false
  end
  st.shadow = shadow:sub(1, off) .. text .. shadow:sub(off + del + 1)
  st.ssize = #st.shadow
  local pos, n, first = 1, #text, true
  repeat
    local stop = math.min(n, pos + CHUNK - 1)
    while stop < n and stop >= pos and continuation(text, stop + 1) do
      stop = stop - 1
    end
    local piece = text:sub(pos, stop)
    local d = first and del or 0
    send("editor.edit", {
      { "file", st.file },
      { "offset", off + pos - 1 },
      { "deleted", d },
      { "text", piece },
      { "line", line },
      { "col", col },
    }, { file = st.file, st = st, delta = #piece - d, resync = whole })
    if line then
      local breaks, i, at = 0, 1, nil
      while true do
        local j = piece:find(eol, i, true)
        if not j then
          break
        end
        breaks, at, i = breaks + 1, j, j + #eol
      end
      if breaks > 0 then
        line, col = line + breaks, #piece - (at + #eol - 1)
      else
        col = col + #piece
      end
    end
    first = false
    pos = stop + 1
  until pos > n
  return true
end

-- Adds one on_bytes change to the buffer's pending regions. Regions are
-- kept sorted and apart, in the buffer's current coordinates: a..b bytes,
-- rows ra..rb, replacing L old bytes holding K line breaks.
local function add_change(st, o, d, n, sr, oer, ner)
  local R = st.regions
  local dn, dr = n - d, ner - oer
  local lo, hi
  local at = #R + 1
  for i = #R, 1, -1 do
    local r = R[i]
    if r.a > o + d then
      r.a, r.b, r.ra, r.rb = r.a + dn, r.b + dn, r.ra + dr, r.rb + dr
      at = i
    elseif r.b < o then
      break
    else
      lo, hi, at = i, hi or i, i
    end
  end
  if lo then
    local first, last = R[lo], R[hi]
    local a, ra = o, sr
    if first.a < o then
      a, ra = first.a, first.ra
    end
    local e, er = o + d, sr + oer
    if last.b > o + d then
      e, er = last.b, last.rb
    end
    local covb, covr, L, K = 0, 0, 0, 0
    for i = lo, hi do
      local r = R[i]
      covb, covr = covb + r.b - r.a, covr + r.rb - r.ra
      L, K = L + r.L, K + r.K
    end
    for i = hi, lo, -1 do
      table.remove(R, i)
    end
    table.insert(R, lo, {
      a = a,
      ra = ra,
      b = e + dn,
      rb = er + dr,
      L = L + (e - a) - covb,
      K = K + (er - ra) - covr,
    })
  else
    table.insert(R, at, { a = o, ra = sr, b = o + n, rb = sr + ner, L = d, K = oer })
  end
  if #R > MAX_REGIONS then
    local first, last = R[1], R[#R]
    local covb, covr, L, K = 0, 0, 0, 0
    for _, r in ipairs(R) do
      covb, covr = covb + r.b - r.a, covr + r.rb - r.ra
      L, K = L + r.L, K + r.K
    end
    st.regions = {
      {
        a = first.a,
        ra = first.ra,
        b = last.b,
        rb = last.rb,
        L = L + (last.b - first.a) - covb,
        K = K + (last.rb - first.ra) - covr,
      },
    }
  end
end

-- The size of the text as the daemon has recorded it: the size read,
-- changed by every edit it took (from the previous buffer of the file too).
local function recorded_size(st)
  if st.prev then
    return st.prev.acked + st.acked - st.size0
  end
  return st.acked
end

local function settle(st, v)
  st.nsize, st.eol, st.bom, st.tail = v.nsize, v.eol, v.bom, v.tail
end

-- Edits were lost on the way (or never sent): the whole text is sent in
-- place of what the daemon has recorded.
local function resync(st, v)
  if st.inflight > 0 or (st.prev and st.prev.inflight > 0) then
    return -- when every reply is in, resolved() flushes again
  end
  if conn.state == "idle" and mono() < conn.next_try then
    return
  end
  local until_ms = muted["editor.edit"]
  if (until_ms and mono() < until_ms) or (st.retry_at and mono() < st.retry_at) then
    return
  end
  local text = full_text(st.buf, v)
  local deleted = recorded_size(st)
  st.acked, st.size0, st.prev = deleted, deleted, nil
  -- The daemon's text is unknown here, only its size.
  st.shadow = string.rep(" ", deleted)
  settle(st, v)
  st.lost, st.diverged = false, false
  stats.resyncs = stats.resyncs + 1
  emit(st, 0, deleted, text, 0, 0, v.eol, true)
end

-- The text sent no longer matches the buffer: sends the difference.
local function repair(st, v, full)
  full = full or full_text(st.buf, v)
  local old = st.shadow
  local n1, n2 = #old, #full
  local p, m = 0, math.min(n1, n2)
  while p < m and old:byte(p + 1) == full:byte(p + 1) do
    p = p + 1
  end
  local q = 0
  while q < m - p and old:byte(n1 - q) == full:byte(n2 - q) do
    q = q + 1
  end
  -- Whole characters only.
  while p > 0 and (continuation(old, p + 1) or continuation(full, p + 1)) do
    p = p - 1
  end
  while q > 0 and (continuation(old, n1 - q + 1) or continuation(full, n2 - q + 1)) do
    q = q - 1
  end
  settle(st, v)
  st.diverged = false
  if p == n1 and p == n2 then
    return
  end
  emit(st, p, n1 - p - q, full:sub(p + 1, n2 - q), nil, nil, v.eol)
end

local last_desync
local function desync(st, v, why)
  stats.desyncs = stats.desyncs + 1
  last_desync = why
  return repair(st, v)
end

local function flush(st)
  st.scheduled = false
  if st.dead or st.broken then
    return
  end
  local buf = st.buf
  if not api.nvim_buf_is_loaded(buf) then
    return
  end
  local p = st.prev
  if p then
    if p.lost then
      st.lost = true
    elseif p.inflight == 0 then
      -- Everything the previous buffer sent was recorded: one stream.
      st.acked, st.prev = recorded_size(st), nil
    end
  end
  local R = st.regions
  st.regions = {}
  local verify = st.verify
  if #R == 0 and not st.lost and not st.diverged and not st.check and not verify then
    return
  end
  st.check, st.verify = false, false
  local until_ms = muted["editor.edit"]
  if hidden[st.file] or (until_ms and mono() < until_ms) or not cfg.enabled then
    -- Not sent: the daemon's text will have to be replaced whole.
    st.lost = st.lost or #R > 0 or st.diverged
    return
  end
  if not supported(buf) then
    st.lost = st.lost or #R > 0 or st.diverged
    return
  end
  local v = view_of(buf)
  if v.ssize > cfg.max_file_bytes then
    st.lost = true
    return
  end
  if st.lost then
    return resync(st, v)
  end
  if st.diverged or st.eol ~= v.eol or st.bom ~= v.bom then
    return repair(st, v)
  end
  local last = R[#R]
  if st.nsize ~= v.nsize and last and last.b == st.nsize then
    -- Neovim 0.7 counts text added at the end of a buffer without its
    -- last line break when 'eol' is off or 'binary' is on (a linewise put,
    -- :t$): the region at the end is as long as the buffer says.
    last.b = last.b + v.nsize - st.nsize
    st.nsize = v.nsize
  end
  if st.nsize ~= v.nsize then
    return desync(st, v, "sizes differ: tracked " .. st.nsize .. ", buffer " .. v.nsize)
  end
  local eolx, bomn = #v.eol - 1, #v.bom
  -- The size, in Neovim's model, before the first region.
  local nmid = st.nsize
  for _, r in ipairs(R) do
    nmid = nmid - (r.b - r.a - r.L)
  end
  for _, r in ipairs(R) do
    local ca = r.a - row_off(buf, r.ra)
    local cb = r.rb < v.lc and (r.b - row_off(buf, r.rb)) or 0
    local text = get_text(buf, r.ra, ca, r.rb, cb, v.lc, v.eol)
    if ca < 0 or cb < 0 or #text - (r.rb - r.ra) * eolx ~= r.b - r.a then
      return desync(st, v, "a region's text has the wrong length")
    end
    local s_off = bomn + r.a + r.ra * eolx
    local s_del = r.L + r.K * eolx
    local sent
    if r.a + r.L == nmid then
      -- The region reaches the end: whether the file ends in a line break
      -- may change with it (and an empty buffer writes no line).
      local before = st.ssize
      local after = v.empty and bomn or (s_off + #text - (v.tail and 0 or #v.eol))
      local c = math.min(s_off, before, after)
      local pre = ""
      if c < s_off then
        local gap = s_off - c
        if ca == 0 and r.ra > 0 and gap <= #v.eol then
          pre = v.eol:sub(-gap)
        elseif r.a == 0 and gap <= bomn then
          pre = v.bom:sub(-gap)
        else
          return desync(st, v, "a region at the end does not line up")
        end
      end
      local t = (pre .. text):sub(1, after - c)
      if c == s_off then
        sent = emit(st, c, before - c, t, r.ra, ca, v.eol)
      else
        sent = emit(st, c, before - c, t, nil, nil, v.eol)
      end
      st.tail = v.tail
    else
      sent = emit(st, s_off, s_del, text, r.ra, ca, v.eol)
    end
    if not sent then
      return desync(st, v, "a region reaches past the text sent")
    end
    nmid = nmid + (r.b - r.a) - r.L
  end
  if v.empty then
    -- Emptied without the end in a region (undoing the text typed into an
    -- empty buffer): what is left is the line break an empty buffer does
    -- not write.
    if st.ssize == bomn + #v.eol then
      emit(st, bomn, #v.eol, "", nil, nil, v.eol)
    end
    st.tail = false
  elseif st.tail ~= v.tail then
    if v.tail then
      emit(st, st.ssize, 0, v.eol, nil, nil, v.eol)
    elseif st.ssize >= #v.eol then
      emit(st, st.ssize - #v.eol, #v.eol, "", nil, nil, v.eol)
    end
    st.tail = v.tail
  end
  if st.ssize ~= v.ssize then
    return desync(st, v, "the text sent has " .. st.ssize .. " bytes, the buffer writes " .. v.ssize)
  end
  if verify or v.ssize <= cfg.verify_bytes then
    local full = full_text(buf, v)
    if full ~= st.shadow then
      stats.desyncs = stats.desyncs + 1
      last_desync = "the text sent differs from the buffer"
      return repair(st, v, full)
    end
  end
end

flush_later = function(st)
  if not st.scheduled and not st.dead then
    st.scheduled = true
    vim.schedule(function()
      guard(flush, st)
    end)
  end
end

local function flush_all(verify)
  for _, st in pairs(bufs) do
    st.verify = st.verify or verify
    guard(flush, st)
  end
end

-- The buffer is unloaded (or reloaded with :e!): what is pending is sent,
-- and the next buffer of the file continues from this one.
local function unload(buf)
  local st = bufs[buf]
  if not st then
    return
  end
  guard(flush, st)
  local ok, modified = pcall(function()
    return vim.bo[buf].modified
  end)
  st.unsaved = not ok or modified
  st.dead = true
  bufs[buf] = nil
  carry[st.file] = st
end

local function attach(buf)
  if bufs[buf] or not cfg.events.edit or not cfg.enabled then
    return
  end
  if not api.nvim_buf_is_loaded(buf) or vim.bo[buf].modified or not supported(buf) then
    return
  end
  local file = real_file(buf)
  if not file then
    return
  end
  local v = view_of(buf)
  if v.ssize > cfg.max_file_bytes then
    return
  end
  -- The file as read: its last line ends in a break iff 'eol' is set.
  local tail = (not v.empty) and vim.bo[buf].eol
  local text = full_text(buf, v, tail)
  local st = {
    buf = buf,
    file = file,
    regions = {},
    shadow = text,
    nsize = v.nsize,
    ssize = #text,
    acked = #text,
    size0 = #text,
    tail = tail,
    eol = v.eol,
    bom = v.bom,
    inflight = 0,
    lost = false,
  }
  local prev = carry[file]
  carry[file] = nil
  if prev and (prev.lost or prev.inflight > 0 or prev.unsaved) then
    -- The previous buffer of this file sent edits that may yet be lost,
    -- or were never saved: this one goes on from what it sent.
    st.prev, prev.successor = prev, st
    st.lost = prev.lost
    if prev.unsaved then
      st.shadow, st.ssize, st.acked, st.size0 = prev.shadow, prev.ssize, prev.ssize, prev.ssize
      st.diverged = true
    end
  end
  local ok, attached = pcall(api.nvim_buf_attach, buf, false, {
    on_bytes = function(_, b, _, sr, _, off, oer, oec, od, ner, nec, nd)
      if bufs[b] ~= st or st.dead then
        return true
      end
      guard(function()
        -- Every row of new (or old) text holds at least its line break;
        -- Neovim 0.7 reports deleting every line as a new extent of one
        -- row and no bytes, where its model has "\n" left.
        od = math.max(od, oer + oec)
        nd = math.max(nd, ner + nec)
        st.nsize = st.nsize + nd - od
        if not st.lost and not st.diverged then
          add_change(st, off, od, nd, sr, oer, ner)
        end
        flush_later(st)
      end)
    end,
    on_reload = function(_, b)
      if bufs[b] ~= st then
        return
      end
      st.regions = {}
      st.diverged = true
      flush_later(st)
    end,
    on_detach = function(_, b)
      -- Before the lines go (:e! detaches before BufUnload).
      if bufs[b] == st then
        unload(b)
      end
      st.dead = true
    end,
  })
  if ok and attached then
    bufs[buf] = st
    if st.lost or st.diverged then
      flush_later(st)
    end
  end
end

---------------------------------------------------------------------------
-- Focus, cursor, selection, commands, diagnostics
---------------------------------------------------------------------------

local last_focus

local function focus(buf)
  if not cfg.events.focus then
    return
  end
  local file = real_file(buf)
  if not file or file == last_focus then
    return
  end
  last_focus = file
  local ft = vim.bo[buf].filetype
  send("editor.focus", { { "file", file }, { "language", ft ~= "" and ft or nil } }, { file = file })
end

-- At most one message per interval per slot, the latest one winning, and
-- none that repeats the last one sent. A message marked `now` is sent at
-- once (and replaces any waiting one).
local slots = {}
local function throttle(name, interval, msg)
  local s = slots[name]
  if not s then
    s = {}
    slots[name] = s
  end
  if msg.key == s.key then
    s.pending = nil
    return
  end
  local t = mono()
  if msg.now or (not s.armed and t - (s.last or -1e12) >= interval) then
    s.last, s.key, s.pending = t, msg.key, nil
    send(msg.kind, msg.fields, { file = msg.file })
    return
  end
  s.pending = msg
  if not s.armed then
    s.armed = true
    vim.defer_fn(function()
      s.armed = false
      local m = s.pending
      s.pending = nil
      if m and m.key ~= s.key then
        s.last, s.key = mono(), m.key
        guard(send, m.kind, m.fields, { file = m.file })
      end
    end, math.max(1, math.floor(interval - (t - (s.last or t)))))
  end
end

local function is_visual(mode)
  return mode ~= nil and mode:find("^[vV\22]") ~= nil
end

local function char_len(line, col)
  local b = line:byte(col + 1)
  if not b then
    return 0
  end
  return b < 0x80 and 1 or b < 0xE0 and 2 or b < 0xF0 and 3 or 4
end

local function selection(file, l1, c1, l2, c2, now)
  if l2 < l1 or (l2 == l1 and c2 < c1) then
    l1, c1, l2, c2 = l2, c2, l1, c1
  end
  throttle("selection", cfg.selection_interval_ms, {
    now = now,
    kind = "editor.selection",
    file = file,
    key = table.concat({ file, l1, c1, l2, c2 }, ":"),
    fields = {
      { "file", file },
      { "line", l1 },
      { "col", c1 },
      { "end_line", l2 },
      { "end_col", c2 },
    },
  })
end

local function line_text(buf, row)
  return api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
end

-- The selection while in visual mode: from the other end to the cursor,
-- the end just past the last character.
local function visual_moved(buf, file, mode)
  local v = vim.fn.getpos("v")
  local cur = api.nvim_win_get_cursor(0)
  local l1, c1 = v[2] - 1, v[3] - 1
  local l2, c2 = cur[1] - 1, cur[2]
  if l2 < l1 or (l2 == l1 and c2 < c1) then
    l1, c1, l2, c2 = l2, c2, l1, c1
  end
  if mode:sub(1, 1) == "V" then
    c1, c2 = 0, #line_text(buf, l2)
  else
    c2 = c2 + char_len(line_text(buf, l2), c2)
  end
  selection(file, math.max(l1, 0), math.max(c1, 0), math.max(l2, 0), math.max(c2, 0))
end

local function cursor_moved()
  local buf = api.nvim_get_current_buf()
  local file = real_file(buf)
  if not file then
    return
  end
  local mode = api.nvim_get_mode().mode
  if is_visual(mode) then
    if cfg.events.selection then
      visual_moved(buf, file, mode)
    end
    return
  end
  if not cfg.events.cursor then
    return
  end
  local cur = api.nvim_win_get_cursor(0)
  local line, col = cur[1] - 1, cur[2]
  throttle("cursor", cfg.cursor_interval_ms, {
    kind = "editor.cursor",
    file = file,
    key = table.concat({ file, line, col }, ":"),
    fields = { { "file", file }, { "line", line }, { "col", col } },
  })
end

-- Leaving visual mode: the selection as the '< and '> marks hold it.
local function visual_left(old_mode)
  if not cfg.events.selection then
    return
  end
  local buf = api.nvim_get_current_buf()
  local file = real_file(buf)
  if not file then
    return
  end
  local s = api.nvim_buf_get_mark(buf, "<")
  local e = api.nvim_buf_get_mark(buf, ">")
  if s[1] < 1 or e[1] < 1 then
    return
  end
  local l1, c1, l2, c2 = s[1] - 1, s[2], e[1] - 1, e[2]
  local last = line_text(buf, l2)
  if old_mode:sub(1, 1) == "V" then
    c1, c2 = 0, #last
  else
    c1 = math.min(c1, #line_text(buf, l1))
    c2 = math.min(c2, #last)
    c2 = c2 + char_len(last, c2)
  end
  -- The final selection is sent at once, not held back by the interval.
  selection(file, l1, c1, l2, c2, true)
end

-- Command modifiers, with the shortest abbreviation each allows: the
-- command they modify is the one named.
local MODIFIERS = {
  { "aboveleft", 3 },
  { "belowright", 3 },
  { "botright", 2 },
  { "browse", 3 },
  { "confirm", 4 },
  { "hide", 3 },
  { "horizontal", 3 },
  { "keepalt", 5 },
  { "keepjumps", 5 },
  { "keepmarks", 3 },
  { "keeppatterns", 5 },
  { "leftabove", 5 },
  { "lockmarks", 3 },
  { "noautocmd", 3 },
  { "noswapfile", 3 },
  { "rightbelow", 6 },
  { "sandbox", 3 },
  { "silent", 3 },
  { "tab", 3 },
  { "topleft", 2 },
  { "unsilent", 3 },
  { "verbose", 4 },
  { "vertical", 4 },
}
local function is_modifier(word)
  for _, m in ipairs(MODIFIERS) do
    if #word >= m[2] and #word <= #m[1] and m[1]:sub(1, #word) == word then
      return true
    end
  end
  return false
end

-- Skips a range (and leading colons and blanks) from position i.
local function skip_range(s, i)
  while true do
    local c = s:sub(i, i)
    if c == "" then
      return i
    elseif c:find("^[%s:%d%.%$%%,;+%-]") then
      i = i + 1
    elseif c == "'" or c == "\\" then
      i = i + 2
    elseif c == "/" or c == "?" then
      local j = i + 1
      while j <= #s do
        local d = s:sub(j, j)
        if d == "\\" then
          j = j + 2
        elseif d == c then
          break
        else
          j = j + 1
        end
      end
      i = j + 1
    else
      return i
    end
  end
end

-- The name of the Ex command in a command line, never its arguments.
local function command_name(s)
  local i = 1
  local name
  for _ = 1, 8 do
    i = skip_range(s, i)
    local c = s:sub(i, i)
    if c:find("^%a") then
      local word = s:match("^%a+", i)
      local digits = s:match("^%d+", i + #word)
      if digits and vim.fn.exists(":" .. word .. digits) == 2 then
        word = word .. digits
      end
      name = word
      i = i + #word
      if not is_modifier(word) then
        return name
      end
      if s:sub(i, i) == "!" then
        i = i + 1
      end
      local rest = skip_range(s, i)
      if not s:sub(rest, rest):find("^[%a!&~<>=@*#]") then
        return name
      end
    elseif c:find("^[!&~<>=@*#]") then
      return c
    else
      return name
    end
  end
  return name
end

local function cmdline_left()
  if not cfg.events.command then
    return
  end
  local ev = vim.v.event
  if not ev or ev.cmdtype ~= ":" or ev.abort then
    return
  end
  local name = command_name(vim.fn.getcmdline())
  if not name or name == "" or #name > 64 or not name:find("^[%w!&~<>=@*#]+$") then
    return
  end
  local file = real_file(api.nvim_get_current_buf())
  send("editor.command", { { "command", name }, { "file", file } }, { file = file })
end

local diag_sent = {} -- file -> counts key
local diag_pending = {}
local diag_armed = false

local function diagnostics_now()
  diag_armed = false
  local pending = diag_pending
  diag_pending = {}
  for buf in pairs(pending) do
    if api.nvim_buf_is_valid(buf) then
      local file = real_file(buf)
      if file then
        local n = { 0, 0, 0, 0 }
        for _, d in ipairs(vim.diagnostic.get(buf)) do
          local sev = d.severity
          if n[sev] then
            n[sev] = n[sev] + 1
          end
        end
        local key = table.concat(n, ":")
        if diag_sent[file] ~= key then
          diag_sent[file] = key
          send("editor.diagnostics", {
            { "file", file },
            { "errors", n[1] },
            { "warnings", n[2] },
            { "info", n[3] },
            { "hints", n[4] },
          }, { file = file })
        end
      end
    end
  end
end

local function diagnostics_changed(buf)
  if not cfg.events.diagnostics or not vim.diagnostic then
    return
  end
  diag_pending[buf] = true
  if not diag_armed then
    diag_armed = true
    vim.defer_fn(function()
      guard(diagnostics_now)
    end, cfg.diagnostics_delay_ms)
  end
end

---------------------------------------------------------------------------
-- Quitting
---------------------------------------------------------------------------

local function busy()
  return flen(conn.queue) > 0 or flen(conn.sent) > 0
end

local function leave()
  flush_all(true)
  if diag_armed then
    guard(diagnostics_now)
  end
  for _, s in pairs(slots) do
    local m = s.pending
    s.pending = nil
    if m and m.key ~= s.key then
      s.key = m.key
      guard(send, m.kind, m.fields, { file = m.file })
    end
  end
  if conn.state == "idle" and flen(conn.queue) > 0 then
    connect()
  end
  local deadline = mono() + cfg.leave_timeout_ms
  local function wait()
    local left = math.floor(deadline - mono())
    if left > 0 and conn.state ~= "idle" and busy() then
      vim.wait(left, function()
        return conn.state == "idle" or not busy()
      end, 5)
    end
  end
  wait()
  -- Replies may have asked for a buffer to be sent again.
  flush_all()
  wait()
  close_pipe()
  conn.state = "idle"
end

---------------------------------------------------------------------------
-- Setup and status
---------------------------------------------------------------------------

local function default_socket()
  local env = vim.env.CANDOR_INGEST_SOCKET
  if env and env ~= "" then
    return env
  end
  local data = vim.env.CANDOR_DATA_DIR
  if data and data ~= "" then
    return data .. "/ingest.sock"
  end
  local xdg = vim.env.XDG_DATA_HOME
  if not xdg or xdg == "" then
    xdg = (vim.env.HOME or "") .. "/.local/share"
  end
  return xdg .. "/candor/ingest.sock"
end

function M.status()
  local reasons = {}
  for k, n in pairs(stats.reasons) do
    reasons[k] = n
  end
  local hid = {}
  for f, r in pairs(hidden) do
    hid[f] = r
  end
  return {
    socket = cfg.socket,
    state = conn.state,
    enabled = cfg.enabled,
    sent = stats.sent,
    ok = stats.ok,
    not_recorded = stats.not_recorded,
    errors = stats.errors,
    dropped = stats.dropped,
    resyncs = stats.resyncs,
    desyncs = stats.desyncs,
    connects = stats.connects,
    queued = flen(conn.queue),
    waiting = flen(conn.sent),
    reasons = reasons,
    hidden = hid,
    last_error = last_error,
    last_refusal = last_refusal,
    last_connection_error = last_conn_error,
    last_desync = last_desync,
  }
end

function M.show_status()
  local s = M.status()
  local state = s.state
  if state == "idle" then
    state = "not connected"
    if conn.next_try > mono() then
      state = state .. string.format(" (next try in %.1f s)", (conn.next_try - mono()) / 1000)
    end
  end
  local reasons = {}
  for k, n in pairs(s.reasons) do
    reasons[#reasons + 1] = k .. " " .. n
  end
  table.sort(reasons)
  local lines = {
    string.format("Candor: %s, socket %s%s", state, s.socket, s.enabled and "" or " (disabled)"),
    string.format(
      "sent %d: recorded %d, not recorded %d%s, errors %d; dropped %d, resent %d",
      s.sent,
      s.ok,
      s.not_recorded,
      #reasons > 0 and (" (" .. table.concat(reasons, ", ") .. ")") or "",
      s.errors,
      s.dropped,
      s.resyncs
    ),
  }
  if s.desyncs > 0 then
    lines[#lines + 1] = string.format("edits that did not add up (sent whole instead): %d", s.desyncs)
  end
  if s.last_error then
    lines[#lines + 1] = "last error: " .. s.last_error
  end
  if s.last_refusal then
    lines[#lines + 1] = "last not recorded: " .. s.last_refusal
  end
  if s.last_connection_error and s.state ~= "connected" then
    local why = tostring(s.last_connection_error)
    if why:find("ENOENT") or why:find("ECONNREFUSED") then
      why = why .. " (is the daemon running? `candor start`)"
    end
    lines[#lines + 1] = "last connection problem: " .. why
  end
  local chunks = {}
  for i, l in ipairs(lines) do
    chunks[#chunks + 1] = { l .. (i < #lines and "\n" or "") }
  end
  api.nvim_echo(chunks, false, {})
end

local WRITE_OPTIONS = {
  fileformat = true,
  bomb = true,
  endofline = true,
  fixendofline = true,
  binary = true,
  fileencoding = true,
}

local function on(group, events, fn)
  api.nvim_create_autocmd(events, {
    group = group,
    callback = function(args)
      guard(fn, args)
    end,
  })
end

function M.setup(opts)
  opts = opts or {}
  cfg = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts)
  if not cfg.socket or cfg.socket == "" then
    cfg.socket = default_socket()
  end
  started = true
  vim.cmd([[
    command! CandorStatus lua require('candor').show_status()
    command! CandorEnable lua require('candor').enable(true)
    command! CandorDisable lua require('candor').enable(false)
  ]])
  local g = api.nvim_create_augroup("candor", { clear = true })
  on(g, { "BufReadPost", "BufNewFile", "BufWritePost", "BufFilePost" }, function(a)
    file_cache[a.buf] = nil
    attach(a.buf)
    local st = bufs[a.buf]
    if st then
      st.file = real_file(a.buf) or st.file
    end
  end)
  on(g, "BufWritePre", function(a)
    local st = bufs[a.buf]
    if st then
      st.check = true
      flush(st)
    end
  end)
  -- What was written, and a buffer left, is checked against what was sent.
  on(g, { "BufWritePost", "BufLeave" }, function(a)
    local st = bufs[a.buf]
    if st then
      st.verify = true
      flush(st)
    end
  end)
  -- Options that change how the file is written: the text sent follows.
  on(g, "OptionSet", function(a)
    local st = bufs[api.nvim_get_current_buf()]
    if st and WRITE_OPTIONS[a.match] then
      st.check = true
      flush_later(st)
    end
  end)
  -- A change Neovim did not report (it has happened around empty
  -- buffers) shows in the sizes: check them after every change.
  on(g, { "TextChanged", "TextChangedI" }, function(a)
    local st = bufs[a.buf]
    if st then
      st.check = true
      flush_later(st)
    end
  end)
  on(g, "BufEnter", function(a)
    attach(a.buf)
    focus(a.buf)
  end)
  on(g, "FocusGained", function(a)
    last_focus = nil
    focus(a.buf)
  end)
  on(g, "BufUnload", function(a)
    unload(a.buf)
  end)
  on(g, "BufWipeout", function(a)
    file_cache[a.buf] = nil
  end)
  on(g, { "CursorMoved", "CursorMovedI" }, cursor_moved)
  on(g, "ModeChanged", function()
    local ev = vim.v.event
    if ev and is_visual(ev.old_mode) and not is_visual(ev.new_mode) then
      visual_left(ev.old_mode)
    end
  end)
  on(g, "CmdlineLeave", cmdline_left)
  if vim.fn.exists("##DiagnosticChanged") == 1 then
    on(g, "DiagnosticChanged", function(a)
      diagnostics_changed(a.buf)
    end)
  end
  on(g, "VimLeavePre", leave)
  -- Buffers loaded before setup (a plugin manager loading this late).
  for _, buf in ipairs(api.nvim_list_bufs()) do
    guard(attach, buf)
  end
  if vim.v.vim_did_enter == 1 then
    guard(focus, api.nvim_get_current_buf())
  end
end

function M.enable(on_off)
  cfg.enabled = on_off and true or false
end

-- From plugin/candor.lua: set up with the defaults unless setup() ran.
function M._autostart()
  if not started then
    M.setup(vim.g.candor or {})
  end
end

-- For tests: the command name taken from a command line.
M._command_name = command_name

return M
