"""The paper's single-person refinement network (Tables 2-4): training and inference."""
