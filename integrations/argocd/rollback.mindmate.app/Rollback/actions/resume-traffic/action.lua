-- Give production traffic back after a failed or aborted full rollback left it stopped: the
-- operator undoes stop-traffic on whatever version each layer runs (never a deploy of the
-- latest source) and records a resume-traffic step per layer.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollback.mindmate.app/resume-traffic"] = "true"
return obj
