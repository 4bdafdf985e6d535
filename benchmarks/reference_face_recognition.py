"""The reference users know: face_recognition's standard dlib pipeline over a folder.

HOG detection (upsampled once, the package default), 68-point landmarks and the 128-D
encoding of every face, in N processes; prints one JSON line per photo like recommend.py.

    python benchmarks/reference_face_recognition.py FOLDER [--processes N]
"""
import argparse
import json
import sys
from multiprocessing import Pool
from pathlib import Path


def analyse(path):
    import face_recognition

    image = face_recognition.load_image_file(path)
    boxes = face_recognition.face_locations(image)
    landmarks = face_recognition.face_landmarks(image, boxes)
    encodings = face_recognition.face_encodings(image, boxes)
    return {"image": str(path), "faces": len(boxes), "landmarks": len(landmarks),
            "encodings": [round(float(e[0]), 4) for e in encodings]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    import face_recognition_models  # noqa: F401  without it face_recognition prints a hint and exits 0
    photos = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if args.processes == 1:
        results = map(analyse, photos)
    else:
        pool = Pool(args.processes)
        results = pool.imap(analyse, photos, chunksize=max(1, len(photos) // (4 * args.processes)))
    for result in results:
        print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
