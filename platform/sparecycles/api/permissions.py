"""Who may use the owners' API: project owners (and superusers); what they see is scoped by
the selectors to the projects they own."""

from rest_framework.permissions import BasePermission

from sparecycles.projects.selectors import user_is_owner


class IsProjectOwner(BasePermission):
    message = ("This API is for project owners. Ask the site's administrators to add your "
               "account as an owner of a project.")

    def has_permission(self, request, view) -> bool:
        return user_is_owner(request.user)


class CanCreateProjects(BasePermission):
    message = "Your account may not create projects; ask the site's administrators."

    def has_permission(self, request, view) -> bool:
        if request.method != "POST":
            return True
        user = request.user
        return bool(user.is_superuser or user.has_perm("projects.add_project"))
