"""Regenerates the image fixtures the Go tests cannot encode themselves
(WebP in its variants, CMYK JPEG). Needs Pillow with WebP support:

    python3 make_fixtures.py   # run inside testdata/images

Every fixture is the same 16x8 quadrant pattern: top-left red, top-right
green, bottom-left blue, bottom-right white (alpha variants: the right half
is fully transparent).
"""
from PIL import Image

W, H = 16, 8
COLORS = {(0, 0): (255, 0, 0), (1, 0): (0, 255, 0), (0, 1): (0, 0, 255), (1, 1): (255, 255, 255)}


def quadrants(mode="RGB", transparent_right=False):
    im = Image.new("RGBA", (W, H))
    for y in range(H):
        for x in range(W):
            qx, qy = x * 2 // W, y * 2 // H
            a = 0 if transparent_right and qx == 1 else 255
            im.putpixel((x, y), COLORS[(qx, qy)] + (a,))
    return im if mode == "RGBA" else im.convert(mode)


def exif_orientation(value):
    ex = Image.Exif()
    ex[0x0112] = value
    return ex.tobytes()


quadrants().save("lossy.webp", "WEBP", quality=95)
quadrants().save("lossless.webp", "WEBP", lossless=True)
quadrants("RGBA", True).save("alpha_lossy.webp", "WEBP", quality=95)
quadrants("RGBA", True).save("alpha_lossless.webp", "WEBP", lossless=True)
quadrants().save("exif6.webp", "WEBP", lossless=True, exif=exif_orientation(6))
frames = [quadrants(), quadrants().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
frames[0].save("animated.webp", "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
quadrants("CMYK").save("cmyk.jpg", "JPEG", quality=95)
