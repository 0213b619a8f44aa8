"""The annotator's rating page and the image tiles it zooms into."""
