"""Training data: labelled image sets, image-caption pairs, and resumable batch order."""
