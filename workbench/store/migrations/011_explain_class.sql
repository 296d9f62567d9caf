-- Multiclass models: an explanation is of one class's raw output, the class the model itself ranked first for
-- that decision. NULL for single-output models (binary classifiers, regressors), where there is one output.
ALTER TABLE explanations ADD COLUMN class_index INTEGER;
