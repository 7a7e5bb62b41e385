-- Abort a Rollback: steps not started yet are skipped and the phase becomes Aborted.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollback.mindmate.app/abort"] = "true"
return obj
