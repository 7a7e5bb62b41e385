-- Argo CD health of a RollbackPolicy (rollback.mindmate.app/v1alpha1): is the policy doing its
-- job? Degraded when it is invalid, cannot reach its metrics, cannot evaluate a rule, or the
-- API server refuses the Rollbacks it creates; Suspended while spec.suspend stops automatic
-- rollbacks (rules are still evaluated); Healthy otherwise. A rule past a threshold is the
-- app's trouble, not the policy's: it is named in the message and the policy stays Healthy.
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
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil then
  return say("Progressing", "Waiting for the rollback operator to validate the policy")
end
if generation ~= nil and status.observedGeneration < generation then
  return say("Progressing", "Waiting for the rollback operator to validate generation "
    .. generation)
end

local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  return say("Degraded", stalled.reason .. ": " .. (stalled.message or ""))
end
local ready = condition(status.conditions, "Ready")
if ready == nil or ready.status == "Unknown" then
  return say("Progressing", "Waiting for the first evaluation")
end
if ready.status == "False" then
  return say("Degraded", ready.reason .. ": " .. (ready.message or ""))
end

local message = ready.message or ""
local breaching = condition(status.conditions, "Breaching")
if breaching ~= nil and breaching.status == "True" then
  message = "Breaching: " .. (breaching.message or "")
end
if obj.spec ~= nil and obj.spec.suspend == true then
  return say("Suspended", "Automatic rollbacks suspended (spec.suspend); " .. message)
end
return say("Healthy", message)
