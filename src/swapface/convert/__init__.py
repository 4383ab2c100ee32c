"""Convert: put the swapped face back into each frame — masks, colour, blending, writers."""
