"""The order's documents: receipt, packing list, shipping label and the labels of its
returns (PDFs with personal data)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from sqlmodel import col, select

from schema.api.admin import DocumentLink
from schema.tables import Document
from starter.api.deps import PersonalData, Session
from starter.api.errors import responses
from starter.services.access import audit

# Receipt, packing list, shipping label; `return_label_<n>`: the label of the order's n-th return.
DocumentKind = Annotated[
    str, Path(pattern=r"^(receipt|packing_list|label|return_label_[1-9][0-9]{0,3})$")
]
router = APIRouter(prefix="/v1/orders/{order_id}/documents", tags=["documents"])


@router.get("", response_model=list[DocumentLink], summary="The order's documents")
async def documents(order_id: uuid.UUID, db: Session, caller: PersonalData) -> list[DocumentLink]:
    rows = (
        await db.exec(
            select(Document).where(Document.order_id == order_id).order_by(col(Document.kind))
        )
    ).all()
    return [
        DocumentLink(kind=d.kind, url=f"/v1/orders/{order_id}/documents/{d.kind}.pdf") for d in rows
    ]


@router.get(
    "/{kind}.pdf",
    responses={200: {"content": {"application/pdf": {}}}, **responses(404)},
    response_class=Response,
    summary="One document as PDF (holds personal data; each read is audited)",
)
async def document(
    order_id: uuid.UUID, kind: DocumentKind, db: Session, caller: PersonalData
) -> Response:
    await audit(db, caller, "order.read_document", str(order_id), kind=kind)
    await db.commit()
    row = (
        await db.exec(select(Document).where(Document.order_id == order_id, Document.kind == kind))
    ).first()
    if row is None:
        raise HTTPException(404, f"order {order_id} has no {kind} document")
    return Response(
        row.content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{kind}.pdf"'},
    )
