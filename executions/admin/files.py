"""The admin's page of files (`system.file(name)`): upload, download size and type."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from ..engine.stored import file_too_large
from ..models import File


class FileForm(forms.ModelForm):
    upload = forms.FileField(
        required=False, help_text="The file's content (replaces what is stored); "
        "at most AUTOMATION_MAX_FILE_BYTES.")

    class Meta:
        model = File
        fields = ["name", "content_type"]

    def clean_upload(self) -> Any:
        upload = self.cleaned_data.get("upload")
        if upload is not None:
            too_large = file_too_large(upload.size)
            if too_large:
                raise forms.ValidationError(too_large)
        return upload


@admin.register(File)
class FileAdmin(admin.ModelAdmin):
    form = FileForm
    list_display = ["name", "size", "content_type", "user", "updated_at"]
    list_select_related = ["user"]
    readonly_fields = ["size", "user", "created_at", "updated_at"]
    search_fields = ["name"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("content")

    def save_model(self, request: HttpRequest, obj: File, form: Any, change: bool) -> None:
        upload = form.cleaned_data.get("upload")
        if upload is not None:
            obj.set_content(upload.read())
            if not form.cleaned_data.get("content_type") and upload.content_type:
                obj.content_type = upload.content_type
        obj.user = request.user  # type: ignore[assignment]  # the admin needs a logged-in user
        super().save_model(request, obj, form, change)
