"""Which of the 68 landmarks is which part of the face (the iBUG 300-W layout dlib's shape
predictor gives), written once for every stage that reads them.

Left and right are as seen in the photo: points 36-41 are the subject's right eye.
"""
JAWLINE = slice(0, 17)  # ear to ear along the jaw, from the photo's left
CHIN = 8  # the jawline's lowest point
CHEEK_JAW = (2, 14)  # jaw points level with the nose wings: the cheeks' outer edge
BROWS = slice(17, 27)
NOSE_BRIDGE, NOSE_TIP, NOSE_BOTTOM = 29, 30, 33
NOSE_WINGS = (31, 35)
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)
