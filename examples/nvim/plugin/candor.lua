-- Starts the Candor plugin with its defaults (or the table in vim.g.candor)
-- unless require("candor").setup() was called already. Set
-- vim.g.candor_autostart = false to start it only from your own setup().
if vim.g.loaded_candor or vim.fn.has("nvim-0.7") == 0 then
  return
end
vim.g.loaded_candor = true
if vim.g.candor_autostart ~= false then
  require("candor")._autostart()
end
