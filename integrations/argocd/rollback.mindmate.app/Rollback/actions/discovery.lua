-- Argo CD resource actions of a Rollback: approve (while it waits for approval), abort (until
-- it has finished), resume-traffic (while traffic it stopped is still stopped).
local actions = {}
local status = obj.status or {}
local phase = status.phase or "Pending"
local annotations = obj.metadata.annotations or {}

local function condition(kind)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local finished = phase == "Planned" or phase == "Succeeded" or phase == "PartiallyFailed"
  or phase == "Failed" or phase == "Aborted"
local approved = annotations["rollback.mindmate.app/approved-by"] ~= nil
local aborting = annotations["rollback.mindmate.app/abort"] == "true"
local traffic = condition("TrafficStopped")
local stopped = traffic ~= nil and traffic.status == "True"
local resuming = annotations["rollback.mindmate.app/resume-traffic"] == "true"

actions["approve"] = {["disabled"] = phase ~= "AwaitingApproval" or approved}
actions["abort"] = {["disabled"] = finished or aborting}
actions["resume-traffic"] = {["disabled"] = not stopped or resuming}
return actions
