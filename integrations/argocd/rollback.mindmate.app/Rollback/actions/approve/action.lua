-- Approve a Rollback waiting in AwaitingApproval: the annotation the operator waits for.
-- The value names the Kubernetes user that sets it, as the chart's admission policy demands:
-- Argo CD's server patches with its own ServiceAccount (change the line below if Argo CD runs
-- in another namespace or under another account). Argo CD records who ran the action.
local approver = "system:serviceaccount:argocd:argocd-server"
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollback.mindmate.app/approved-by"] = approver
return obj
