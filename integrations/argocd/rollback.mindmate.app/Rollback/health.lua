-- Argo CD health of a Rollback (rollback.mindmate.app/v1alpha1): one execution of the runbook.
-- Progressing while it plans, queues, runs and verifies; Suspended while it waits for approval;
-- Healthy once it succeeded (or, as a dry run, planned); Degraded when it failed, was aborted,
-- was refused as invalid, or left production traffic stopped.
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
  return say("Progressing", "Waiting for the rollback operator to plan it")
end

local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" and stalled.reason == "InvalidSpec" then
  return say("Degraded", "Invalid: " .. (stalled.message or ""))
end

local traffic = condition(status.conditions, "TrafficStopped")
if traffic ~= nil and traffic.status == "True" then
  return say("Degraded", "Traffic still stopped: " .. (traffic.message or ""))
end

local refused = condition(status.conditions, "SpecChangeRefused")
if refused ~= nil and refused.status == "True" then
  return say("Degraded", "Spec change refused: " .. (refused.message or ""))
end

local phase = status.phase
local message = phase
if status.message ~= nil and status.message ~= "" then
  message = phase .. ": " .. status.message
end
if phase == "Succeeded" or phase == "Planned" then
  return say("Healthy", message)
end
if phase == "AwaitingApproval" then
  return say("Suspended", message)
end
if phase == "Failed" or phase == "PartiallyFailed" or phase == "Aborted" then
  return say("Degraded", message)
end
if phase == "Pending" or phase == "Planning" or phase == "Queued" or phase == "Running"
    or phase == "Verifying" then
  return say("Progressing", message)
end
return say("Unknown", "Unknown phase " .. phase)
