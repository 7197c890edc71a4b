"""Export Keras models to verified `.tflite` files, and run them (`export.runtime`)."""
