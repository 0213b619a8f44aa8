from __future__ import annotations

from collections.abc import Mapping

from django.db.models import QuerySet
from rest_framework import mixins, serializers, viewsets
from rest_framework.permissions import IsAuthenticated

from evalhub.core.converters import whole_number
from evalhub.core.errors import InvalidFields
from evalhub.core.serializers import duplicate
from evalhub.projects.api_base import ProjectScopedViewSet
from evalhub.projects.models import Membership, Project, Role
from evalhub.projects.permissions import require_project_role
from evalhub.projects.references import ScopedModelSerializer
from evalhub.projects.selectors import projects_for_user, role_in_project, with_role_of
from evalhub.projects.services import (
    AlreadyMember,
    member_candidate,
    membership_add,
    membership_change_role,
    membership_fixed_check,
    membership_remove,
    project_create_by,
)

ALL_ROLES = (Role.OWNER, Role.SCIENTIST, Role.ANNOTATOR)


class ProjectSerializer(ScopedModelSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "description", "created_at", "my_role"]
        read_only_fields = ["id", "created_at", "my_role"]
        extra_kwargs = {"slug": {"required": False}}

    def get_my_role(self, project: Project) -> str | None:
        # The list's queryset reads the role with each project (``with_role_of``); a project
        # just created has none read yet.
        if hasattr(project, "user_role"):
            return project.user_role
        return role_in_project(user=self.context["request"].user, project_id=project.id)


class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Projects the caller is a member of. Creating one (and owning it) is for the users
    EVALHUB_PROJECT_CREATORS allows (staff and users given the permission by default)."""

    serializer_class = ProjectSerializer
    permission_classes = [IsAuthenticated]
    filterset_fields = ["slug"]

    def get_queryset(self) -> QuerySet[Project]:
        return with_role_of(projects_for_user(user=self.request.user), user=self.request.user)

    def perform_create(self, serializer: ProjectSerializer) -> None:
        serializer.instance = project_create_by(user=self.request.user,
                                                **serializer.validated_data)

    def perform_update(self, serializer: ProjectSerializer) -> None:
        require_project_role(
            request=self.request, project_id=serializer.instance.id, roles=(Role.OWNER,)
        )
        serializer.save()


class MembershipSerializer(ScopedModelSerializer):
    username = serializers.CharField(source="user.username", max_length=150)

    class Meta:
        model = Membership
        fields = ["id", "project", "username", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class MembershipChangeSerializer(ScopedModelSerializer):
    #: ``validate`` refuses another project or user in its own words ("is fixed").
    CHECKS_OWN_READ_ONLY = frozenset({"project", "username"})

    class Meta:
        model = Membership
        fields = ["id", "project", "username", "role", "created_at"]
        read_only_fields = ["id", "project", "username", "created_at"]

    username = serializers.CharField(source="user.username", read_only=True)

    def validate(self, attrs: dict) -> dict:
        # project and username are read-only, so DRF drops them: read what was sent (an id as
        # a form sends it too), so that a membership fetched and sent back is still accepted.
        sent = self.initial_data if isinstance(self.initial_data, Mapping) else {}
        changes = {name: whole_number(sent[name]) if name == "project" else sent[name]
                   for name in ("project", "username") if name in sent}
        try:
            membership_fixed_check(membership=self.instance, changes=changes)
        except InvalidFields as exc:
            raise serializers.ValidationError(exc.fields) from exc
        return super().validate(attrs)


class MembershipViewSet(ProjectScopedViewSet):
    """Members see who else is in their projects; only owners add, change or remove members,
    and a project always keeps an owner."""

    serializer_class = MembershipSerializer
    read_roles = ALL_ROLES
    write_roles = (Role.OWNER,)
    filterset_fields = ["project", "role"]

    def get_serializer_class(self) -> type[serializers.ModelSerializer]:
        if self.action in ("update", "partial_update"):
            return MembershipChangeSerializer
        return MembershipSerializer

    def base_queryset(self) -> QuerySet[Membership]:
        return Membership.objects.select_related("user").order_by("id")

    def perform_create(self, serializer: MembershipSerializer) -> None:
        data = serializer.validated_data
        project = data["project"]
        require_project_role(request=self.request, project_id=project.id, roles=self.write_roles)
        user = member_candidate(actor=self.request.user, username=data["user"]["username"])
        try:
            serializer.instance = membership_add(project=project, user=user, role=data["role"])
        except AlreadyMember as exc:
            raise duplicate("username", str(exc)) from exc  # 409, as every duplicate

    def perform_update(self, serializer: MembershipChangeSerializer) -> None:
        serializer.instance = membership_change_role(
            membership=serializer.instance,
            role=serializer.validated_data.get("role", serializer.instance.role))

    def perform_destroy(self, instance: Membership) -> None:
        membership_remove(membership=instance)
