"""Face extraction: detect, landmark, align, mask, embed; write faces and the alignments store."""
