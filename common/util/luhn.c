/* avk_luhn: see luhn.h. */
#include "common/util/luhn.h"

int avk_luhn(const char *digits, size_t n)
{
        /* A digit at a weight of 2, its product's two digits summed: looked up, not a branch
         * on the product that the digits of every identifier send either way. */
        static const int doubled[10] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9};
        int sum = 0;

        if (digits == NULL)
                return -1;
        for (size_t i = 0; i < n; i++) {
                unsigned d = (unsigned char)digits[i] - (unsigned)'0';

                if (d > 9)
                        return -1;
                sum += i % 2 == 0 ? doubled[d] : (int)d;
        }
        return (10 - sum % 10) % 10;
}
