-- Argo CD health of a RestorePoint (rollback.mindmate.app/v1alpha1): a database dump and a
-- storage point in time taken together. Progressing while it is taken, Healthy once taken,
-- Degraded when it failed or its spec was refused.
local hs = {}

local function condition(conditions, kind)
  for _, c in ipairs(conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function say(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local status = obj.status
if status == nil or status.phase == nil then
  return say("Progressing", "Waiting for the rollback operator to take it")
end
local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  return say("Degraded", stalled.reason .. ": " .. (stalled.message or status.message or ""))
end

local phase = status.phase
local message = phase
if status.message ~= nil and status.message ~= "" then
  message = phase .. ": " .. status.message
end
if phase == "Succeeded" then
  return say("Healthy", message)
end
if phase == "Failed" then
  return say("Degraded", message)
end
if phase == "Pending" or phase == "Running" then
  return say("Progressing", message)
end
return say("Unknown", "Unknown phase " .. phase)
