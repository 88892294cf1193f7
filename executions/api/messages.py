"""`/api/messages/`: message forms, open ones first, and `POST .../{id}/respond/`."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Value, When
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from executions import messages
from executions.models import Message
from executions.permissions import MayAnswerMessages, ModelPermissions

from .pagination import Page


class MessageSerializer(serializers.ModelSerializer):
    message = serializers.CharField(source="text", read_only=True)
    answered_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Message
        fields = [
            "id", "subject", "message", "message_type", "body", "status", "response", "execution",
            "answered_by", "answered_at", "created_at",
        ]
        read_only_fields = fields


class RespondSerializer(serializers.Serializer):
    response = serializers.JSONField()


class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Message forms of flows; `?status=open` lists only those waiting for an answer."""

    pagination_class = Page  # ?limit at most 1000
    queryset = (
        Message.objects.select_related("answered_by")
        .annotate(open_first=Case(When(status=Message.Status.OPEN, then=Value(0)),
                                  default=Value(1), output_field=IntegerField()))
        .order_by("open_first", "-id")
    )
    serializer_class = MessageSerializer
    filterset_fields = ["status", "execution", "message_type"]

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "respond":  # who may answer depends on the form's execution
            return [MayAnswerMessages()]
        return [ModelPermissions()]

    @action(detail=True, methods=["post"])
    def respond(self, request: Request, pk: str | None = None) -> Response:
        message = self.get_object()
        payload = RespondSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            messages.respond(message, payload.validated_data["response"], request.user)
        except messages.ResponseError as exc:
            field = exc.field if exc.field == "response" else f"response.{exc.field}"
            return Response({field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        except messages.MessageClosed as exc:
            return Response({"status": [str(exc)]}, status=status.HTTP_409_CONFLICT)
        return Response(MessageSerializer(message).data)
